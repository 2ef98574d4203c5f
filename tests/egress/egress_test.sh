#!/usr/bin/env bash
# The no-egress proof. Every hearth command runs in a network namespace ("inside") whose only
# links are loopback and a veth into a second namespace that plays the outside world: the
# outside has an address (IPv4 and IPv6) and is the inside's default route for both families,
# so any attempt to reach any non-loopback address goes there. tcpdump in the outside captures
# every packet that arrives from the inside; `strace -f -e trace=network` records every
# connect/sendto/sendmsg of each hearth process (threads and children included).
# Asserts: zero packets at the outside, zero connects or addressed sends to anything that the
# test did not set up (the loopback ports below), and the canary strings of the prompts and of
# the outputs in no log, metric, audit file or $HEARTH_HOME unless `serve --log-prompts`.
# Two positive controls show that both detectors and the canary grep do catch what they must.
# Usage: egress_test.sh HEARTH_BIN   (root: network namespaces, tcpdump)
set -euo pipefail
bin=$(readlink -f "$1")
skip() {
  if [ "${CI:-}" = true ]; then echo "FAIL: $*" >&2; exit 1; fi
  echo "SKIP: $*"; exit 0
}
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, tcpdump)"
for tool in ip tcpdump strace curl mosquitto; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || skip "$tool is missing (scripts/setup.sh installs it)"
done

work=$(mktemp -d /tmp/hearth-egress.XXXXXX)
chmod 0711 "$work"  # mosquitto, started as root, drops to its own user and reads its config here
tag=$$
IN=hearth-eg-in-$tag OUT=hearth-eg-out-$tag
VI=hegi$((tag % 100000)) VO=hego$((tag % 100000))
# The outside's addresses: the inside's gateways. Nothing listens there.
OUT4=10.254.77.1 IN4=10.254.77.2 OUT6=fd00:4845:4152::1 IN6=fd00:4845:4152::2
# The only endpoints the test configures (all on the inside's loopback).
P_SERVE=18080 P_SERVE2=18081 P_BROKER=18883 P_CTL=18443 P_AGENT=19101 P_REG=18500 P_DREG=18501
ALLOWED_PORTS=" $P_SERVE $P_SERVE2 $P_BROKER $P_CTL $P_AGENT $P_REG $P_DREG "
CANARY="CANARY-7f3a9c2e-hearth-egress"
pids=()
failed=0
cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -KILL "${pids[$i]}" 2>/dev/null || true; done
  ip netns del "$IN" 2>/dev/null || true
  ip netns del "$OUT" 2>/dev/null || true
  if [ $failed -eq 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; failed=1; exit 1; }
start=$SECONDS
# find_exe PID EXE: sets FOUND to the process under PID (itself or a descendant) running EXE
# (`ip netns exec` and strace stand between this shell and the program).
find_exe() {
  FOUND=""
  local exe; exe=$(readlink -f "$2")
  for _ in $(seq 100); do
    local todo=("$1")
    while [ ${#todo[@]} -gt 0 ]; do
      local p=${todo[0]}; todo=("${todo[@]:1}")
      if [ "$(readlink -f "/proc/$p/exe" 2>/dev/null)" = "$exe" ]; then FOUND=$p; return 0; fi
      todo+=($(pgrep -P "$p" || true))
    done
    sleep 0.05
  done
  fail "$2 did not start under pid $1"
}

ip netns add "$IN" || skip "cannot make a network namespace"
ip netns add "$OUT"
ip link add "$VI" type veth peer name "$VO"
ip link set "$VI" netns "$IN"
ip link set "$VO" netns "$OUT"
inside() { ip netns exec "$IN" "$@"; }
outside() { ip netns exec "$OUT" "$@"; }
# No link-local address, no DAD, no router solicitation on the inside's veth: the kernel itself
# sends nothing there, so every captured packet is one that a process asked for.
inside sysctl -qw "net.ipv6.conf.$VI.addr_gen_mode=1" "net.ipv6.conf.$VI.accept_dad=0" \
  "net.ipv6.conf.$VI.router_solicitations=0" "net.ipv6.conf.$VI.accept_ra=0"
inside ip link set lo up
outside ip link set lo up
outside ip addr add "$OUT4/24" dev "$VO"
outside ip -6 addr add "$OUT6/64" dev "$VO" nodad
outside ip link set "$VO" up
inside ip addr add "$IN4/24" dev "$VI"
inside ip -6 addr add "$IN6/64" dev "$VI" nodad
inside ip link set "$VI" up
inside ip route add default via "$OUT4"
inside ip -6 route add default via "$OUT6"
sleep 1
# Only packets that arrive at the outside from the inside (-Q in), unbuffered.
ip netns exec "$OUT" tcpdump -Q in -i "$VO" -n -U -w "$work/outside.pcap" 2>"$work/tcpdump.err" &
pids+=($!)
find_exe $! "$(command -v tcpdump)"
pids+=("$FOUND")
for _ in $(seq 50); do grep -q "listening on" "$work/tcpdump.err" 2>/dev/null && break; sleep 0.1; done
grep -q "listening on" "$work/tcpdump.err" || fail "tcpdump did not start: $(cat "$work/tcpdump.err")"
packets() { tcpdump -n -r "$work/outside.pcap" 2>/dev/null; }

mkdir -p "$work/trace" "$work/log"
H1=$work/home H2=$work/home2 H3=$work/home3 HC=$work/home-ctl HA=$work/home-agent
# h TAG [VAR=VALUE...] -- ARGS: hearth ARGS inside, traced into trace/TAG, stderr into log/TAG.err.
h() {
  local t=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  inside strace -f -qq -e trace=network -o "$work/trace/$t" env HEARTH_HOME="$H1" "${envs[@]}" "$bin" "$@" \
    2>"$work/log/$t.err"
}
# hbg TAG [VAR=VALUE...] -- ARGS: the same in the background; sets BG to hearth's own pid.
hbg() {
  local t=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  ip netns exec "$IN" strace -f -qq -e trace=network -o "$work/trace/$t" env HEARTH_HOME="$H1" "${envs[@]}" "$bin" "$@" \
    >"$work/log/$t.out" 2>"$work/log/$t.err" &
  local sp=$!
  pids+=($sp)
  find_exe "$sp" "$bin"
  BG=$FOUND
  pids+=("$BG")
}
# Stops a background hearth (SIGTERM, as systemd does) and waits for it.
stop() { kill -TERM "$1"; for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; fail "pid $1 ignored SIGTERM"; }
wait_url() {
  for _ in $(seq 150); do inside curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  fail "nothing answered at $1"
}
# req NAME PATH JSON: a POST inside the namespace; the body in log/NAME.json.
req() {
  inside curl -sS -m 60 -o "$work/log/$1.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "$3" "$4$2" >"$work/log/$1.code"
  [ "$(cat "$work/log/$1.code")" = 200 ] || fail "$2 answered $(cat "$work/log/$1.code"): $(head -c 300 "$work/log/$1.json")"
}

# 1. train: the test's own model (a few steps of the nano preset on a Debian license text and
#    hearth's story grammar; nothing from ../shared).
h train -- train --corpus /usr/share/common-licenses/GPL-3 --stories 50 --preset nano --steps 4 -t 2 \
  --sample-tokens 0 --out "$work/m.gguf" >"$work/log/train.out" || fail "train: $(tail -3 "$work/log/train.err")"
model=$work/m.gguf

# 2. run, with the canary in the prompt.
h run -- run "$model" -p "$CANARY once upon a time" -n 24 --temp 1 --seed 7 -c 128 >"$work/log/run.out" ||
  fail "run: $(tail -3 "$work/log/run.err")"
# 3. quantize.
h quantize -- quantize "$model" "$work/m-q8.gguf" Q8_0 >/dev/null || fail "quantize: $(tail -3 "$work/log/quantize.err")"
# 4. the store: key, import, sign, trust, verify.
h keygen -- keygen --out "$work/acme" >/dev/null || fail "keygen"
h import -- import "$work/m-q8.gguf" acme/tiny:v1 >/dev/null || fail "import: $(cat "$work/log/import.err")"
h sign -- sign acme/tiny:v1 --key "$work/acme.key" >/dev/null || fail "sign: $(cat "$work/log/sign.err")"
h trust -- trust add "$work/acme.pub" --models 'acme/*' --name acme >/dev/null || fail "trust add"
h verify -- verify acme/tiny:v1 >"$work/log/verify.out" || fail "verify: $(cat "$work/log/verify.err")"
grep -q "signed by acme" "$work/log/verify.out" || fail "verify did not name the signer: $(cat "$work/log/verify.out")"
# 5. bundle export, and import into another home that trusts the same key.
h bundle-export -- bundle export acme/tiny:v1 "$work/tiny.tar" >/dev/null || fail "bundle export"
h trust2 HEARTH_HOME="$H2" -- trust add "$work/acme.pub" --models 'acme/*' --name acme >/dev/null || fail "trust add (2)"
h bundle-import HEARTH_HOME="$H2" -- bundle import "$work/tiny.tar" >/dev/null ||
  fail "bundle import: $(cat "$work/log/bundle-import.err")"
h verify2 HEARTH_HOME="$H2" -- verify acme/tiny:v1 >/dev/null || fail "verify after bundle import"

# 5b. the registry side: `registry serve` shares this home's store on loopback and a third home
#     pulls from it; a push goes to a real docker-registry, also on the inside's loopback.
R=http://127.0.0.1:$P_REG
hbg registry -- registry serve --listen 127.0.0.1:$P_REG
reg_pid=$BG
wait_url "$R/v2/"
h trust3 HEARTH_HOME="$H3" -- trust add "$work/acme.pub" --models 'acme/*' --name acme >/dev/null || fail "trust add (3)"
h pull HEARTH_HOME="$H3" -- pull acme/tiny:v1 --mirror "$R" >/dev/null || fail "pull: $(tail -3 "$work/log/pull.err")"
h verify3 HEARTH_HOME="$H3" -- verify acme/tiny:v1 >/dev/null || fail "verify after pull"
stop "$reg_pid"
mkdir -p "$work/dreg"
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$work/dreg/data" "$P_DREG" >"$work/dreg/config.yml"
ip netns exec "$IN" docker-registry serve "$work/dreg/config.yml" >"$work/dreg/registry.log" 2>&1 &
pids+=($!)
wait_url "http://127.0.0.1:$P_DREG/v2/"
h push -- push acme/tiny:v1 --to "http://127.0.0.1:$P_DREG" >/dev/null || fail "push: $(tail -3 "$work/log/push.err")"
# 5c. finetune (a LoRA adapter, on text that carries the canary) and chat (the canary in a turn;
#     its transcript echoes the turn, so it is kept outside log/).
{ echo "$CANARY"; head -c 6000 /usr/share/common-licenses/GPL-3; } >"$work/ft.txt"
h finetune -- finetune "$model" --data "$work/ft.txt" --out "$work/lora.gguf" --steps 2 --rank 2 -c 32 -b 2 -t 2 \
  >/dev/null || fail "finetune: $(tail -3 "$work/log/finetune.err")"
printf '%s hello\n' "$CANARY" | h chat -- chat "$model" -n 12 >"$work/chat.out" || fail "chat: $(tail -3 "$work/log/chat.err")"
# 5d. ONNX: a sensor autoencoder trained here, scored, imported into the store and inspected.
awk 'BEGIN { for (i = 0; i < 400; i++) printf "%.4f,%.4f\n", sin(i / 5.0), cos(i / 7.0) }' >"$work/sensor.csv"
h anomaly-train -- anomaly train --csv "$work/sensor.csv" --out "$work/ae.onnx" --window 16 --hidden 8 --bottleneck 2 \
  --epochs 2 >/dev/null || fail "anomaly train: $(tail -3 "$work/log/anomaly-train.err")"
h anomaly-score -- anomaly score --model "$work/ae.onnx" --csv "$work/sensor.csv" -t 2 >/dev/null ||
  fail "anomaly score: $(tail -3 "$work/log/anomaly-score.err")"
h import-onnx -- import "$work/ae.onnx" acme/ae:v1 >/dev/null || fail "import onnx: $(tail -3 "$work/log/import-onnx.err")"
h inspect-onnx -- inspect acme/ae:v1 >/dev/null || fail "inspect onnx: $(tail -3 "$work/log/inspect-onnx.err")"

# 6. serve, OpenAI and Ollama routes, streamed and not, every prompt carrying the canary.
S=http://127.0.0.1:$P_SERVE
hbg serve -- serve "$model" --host 127.0.0.1 --port $P_SERVE -c 256 --parallel 2
serve_pid=$BG
wait_url "$S/health"
req chat /v1/chat/completions '{"messages":[{"role":"user","content":"'"$CANARY"' tell me a story"}],"max_tokens":24,"temperature":1,"seed":1}' "$S"
req chat-stream /v1/chat/completions '{"messages":[{"role":"user","content":"'"$CANARY"' again"}],"max_tokens":16,"stream":true,"temperature":1,"seed":2}' "$S"
req completion /v1/completions '{"prompt":"'"$CANARY"' once","max_tokens":24,"temperature":1,"seed":3}' "$S"
req ollama-chat /api/chat '{"model":"m","messages":[{"role":"user","content":"'"$CANARY"' hello"}],"stream":false,"options":{"num_predict":16,"temperature":1,"seed":4}}' "$S"
req ollama-generate /api/generate '{"model":"m","prompt":"'"$CANARY"' hi","stream":false,"options":{"num_predict":16,"temperature":1,"seed":5}}' "$S"
req embeddings /v1/embeddings '{"input":"'"$CANARY"' embed me"}' "$S"
req tokenize /tokenize '{"content":"'"$CANARY"'"}' "$S"
inside curl -sf "$S/metrics" >"$work/log/metrics.txt" || fail "/metrics"
inside curl -sf "$S/v1/models" >/dev/null || fail "/v1/models"
stop "$serve_pid"

# 7. the fleet: fleet init, Mosquitto and the controller on loopback, an agent enrolled with a
#    one-time token that runs, comes online, sends telemetry and serves a request.
F=$work/fleet
h fleet-init HEARTH_HOME="$HC" -- fleet init "$F" --name plant --controller-url https://127.0.0.1:$P_CTL \
  --broker-url mqtts://127.0.0.1:$P_BROKER --json >"$work/log/fleet-init.json" || fail "fleet init: $(cat "$work/log/fleet-init.err")"
ca=$(sed -n 's/.*"ca_sha256": *"\([0-9a-f]*\)".*/\1/p' "$work/log/fleet-init.json")
[ ${#ca} -eq 64 ] || fail "fleet init printed no CA digest: $(cat "$work/log/fleet-init.json")"
ip netns exec "$IN" /usr/sbin/mosquitto -c "$F/broker/mosquitto.conf" >"$work/log/mosquitto.log" 2>&1 &
pids+=($!)
find_exe $! /usr/sbin/mosquitto
pids+=("$FOUND")
hbg controller HEARTH_HOME="$HC" -- controller --fleet "$F"
ctl_pid=$BG
for _ in $(seq 100); do inside bash -c "exec 3<>/dev/tcp/127.0.0.1/$P_CTL" 2>/dev/null && break; sleep 0.1; done
h token HEARTH_HOME="$HC" -- fleet --fleet "$F" token create --json >"$work/log/token.json" || fail "token create"
tok=$(sed -n 's/.*"token": *"\([0-9a-f]*\)".*/\1/p' "$work/log/token.json")
h enroll HEARTH_HOME="$HA" -- agent enroll --controller https://127.0.0.1:$P_CTL --token "$tok" --node-id edge-eg \
  --ca-sha256 "$ca" >/dev/null || fail "agent enroll: $(cat "$work/log/enroll.err")"
h agent-trust HEARTH_HOME="$HA" -- trust add "$work/acme.pub" --models 'acme/*' --name acme >/dev/null || fail "trust add (agent)"
hbg agent HEARTH_HOME="$HA" -- agent run --serve 127.0.0.1:$P_AGENT --telemetry-interval 1
agent_pid=$BG
online=0
for _ in $(seq 100); do
  h nodes HEARTH_HOME="$HC" -- fleet --fleet "$F" nodes --json >"$work/log/nodes.json" || true
  grep -q '"presence": *"online"' "$work/log/nodes.json" && grep -q '"telemetry"' "$work/log/nodes.json" && { online=1; break; }
  sleep 0.2
done
[ $online -eq 1 ] || fail "the agent never came online with telemetry: $(cat "$work/log/nodes.json")"
# The agent serves no model until a rollout: the request carries the canary through its HTTP path all the same.
inside curl -s -m 10 -o "$work/log/agent-req.json" -H 'Content-Type: application/json' \
  -d '{"messages":[{"role":"user","content":"'"$CANARY"' agent"}],"max_tokens":8}' \
  "http://127.0.0.1:$P_AGENT/v1/chat/completions" || true
sleep 1.5  # one more telemetry interval after the request
stop "$agent_pid"
stop "$ctl_pid"
# A clean stop (as systemd's): no abort on the way out (the agent once threw on a double unlock).
for t in agent controller; do
  ! grep -q "terminate called\|Aborted\|AddressSanitizer" "$work/log/$t.err" || fail "$t did not stop cleanly on SIGTERM: $(tail -3 "$work/log/$t.err")"
done

# --- the assertions -------------------------------------------------------------------------
sleep 0.5
n=$(packets | wc -l)
[ "$n" -eq 0 ] || { packets | head -20 >&2; fail "$n packet(s) reached the outside"; }

# Every sockaddr in a connect/sendto/sendmsg (and the addresses of resolver-style lookups):
# AF_INET/AF_INET6 only to 127.0.0.1/::1 at the configured ports; AF_UNIX only to the paths
# listed below; AF_NETLINK (the kernel's routing/address tables) only to the kernel (pid 0).
bad=$(cat "$work"/trace/* | grep -E '(connect|sendto|sendmsg)\(' | grep -E 'sa_family=|sun_path|nl_pid' | while IFS= read -r line; do
  case "$line" in
    *AF_INET6*)
      addr=$(sed -n 's/.*inet_pton(AF_INET6, "\([^"]*\)".*/\1/p' <<<"$line")
      port=$(sed -n 's/.*sin6_port=htons(\([0-9]*\)).*/\1/p' <<<"$line")
      { [ "$addr" = "::1" ] && [[ "$ALLOWED_PORTS" == *" $port "* ]]; } || echo "$line" ;;
    *AF_INET*)
      addr=$(sed -n 's/.*inet_addr("\([^"]*\)").*/\1/p' <<<"$line")
      port=$(sed -n 's/.*sin_port=htons(\([0-9]*\)).*/\1/p' <<<"$line")
      { [ "$addr" = "127.0.0.1" ] && [[ "$ALLOWED_PORTS" == *" $port "* ]]; } || echo "$line" ;;
    *AF_NETLINK*) [[ "$line" == *"nl_pid=0"* ]] || echo "$line" ;;
    *AF_UNIX*)
      # glibc asks nscd (name service cache) when it resolves a user or host name; a local
      # daemon, if there is one, and nothing on this machine runs one.
      [[ "$line" == *'"/var/run/nscd/socket"'* ]] || echo "$line" ;;
    *) echo "$line" ;;
  esac
done)
[ -z "$bad" ] || { echo "$bad" | head -20 >&2; fail "connects or sends to endpoints the test did not configure"; }
# The tracer saw the traffic it had to see (the detector is not blind): the requests to serve.
grep -qE "accept4?\(" "$work/trace/serve" || fail "strace saw no accept in serve"
grep -q "htons($P_BROKER)" "$work/trace/agent" || fail "strace saw no connect to the broker from the agent"

# The canary and the outputs: the prompts' canary, and long stretches of each generated text.
outputs=()
# A needle is 12 to 40 characters of the text from its first non-blank one, with no JSON escape
# left in it (an escaped stretch would not match the raw bytes anywhere, so it proves nothing).
add_output() {
  local s; s=$(tr '\n\t' '  ' <<<"$1" | sed 's/^ *//')
  s=${s:0:40}
  [ ${#s} -ge 12 ] && [[ "$s" != *\\* ]] && [ -n "$(tr -d ' ' <<<"$s")" ] && outputs+=("$s")
  return 0
}
add_output "$(sed "s/^.*$CANARY once upon a time//" "$work/log/run.out")"
for f in chat completion ollama-chat ollama-generate; do
  add_output "$(grep -o '"\(content\|text\|response\)": *"[^"]*"' "$work/log/$f.json" | head -1 | sed 's/^[^:]*: *"//; s/"$//' |
    sed 's/\\n/ /g; s/\\"/"/g')"
done
[ ${#outputs[@]} -ge 4 ] || fail "too few outputs of 12+ characters to look for (${#outputs[@]})"
where=()
for d in "$H1" "$H2" "$H3" "$HC" "$HA" "$F" "$work/log"; do [ -e "$d" ] && where+=("$d"); done
for needle in "$CANARY" "${outputs[@]}"; do
  # run.out is the generated text on stdout, and the *.json are the API answers: the product's
  # output, not a log. Everything else in the logs and homes counts.
  hits=$(grep -rlaF -- "$needle" "${where[@]}" | grep -vE '/log/(run\.out|[a-z-]+\.json)$' || true)
  [ -z "$hits" ] || fail "'$needle' found in: $hits"
done
grep -q "^hearth_" "$work/log/metrics.txt" || grep -q "^# HELP" "$work/log/metrics.txt" || fail "/metrics had no metrics"

# Positive control 1: the canary grep sees a prompt that is logged (`serve --log-prompts`).
S2=http://127.0.0.1:$P_SERVE2
hbg serve-logged -- serve "$model" --host 127.0.0.1 --port $P_SERVE2 -c 256 --log-prompts
logged_pid=$BG
wait_url "$S2/health"
req logged /v1/completions '{"prompt":"'"$CANARY"' logged","max_tokens":8,"temperature":0}' "$S2"
stop "$logged_pid"
grep -qF "$CANARY" "$work/log/serve-logged.err" || fail "--log-prompts did not log the canary: the grep proves nothing"

# Positive control 2: hearth asked to reach an outside address is seen by both detectors (the
# outside's own address: its kernel answers with a reset at once).
h control -- pull acme/tiny:v2 --mirror "http://$OUT4:9" >/dev/null 2>&1 || true
sleep 0.5
packets | grep -q "$IN4\.[0-9]* > $OUT4\.9: Flags \[S\]" || fail "tcpdump did not see the control's SYN"
grep -q "inet_addr(\"$OUT4\")" "$work/trace/control" || fail "strace did not see the control's connect"

echo "PASS: no packet left the namespace; ${#outputs[@]} outputs and the canary in no log, metric or home ($((SECONDS - start)) s)"

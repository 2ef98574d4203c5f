#!/usr/bin/env bash
# The Debian package, end to end: build it (twice, two versions) with scripts/package.sh, check
# its contents, the units (`systemd-analyze verify`, and `systemd-analyze security` <= 2.0 each),
# then install it with apt in a clean Debian 12 root and, there:
#   - the hearth system user and /var/lib/hearth exist;
#   - hearth-serve@default's ExecStart (with the unit's Environment= and /etc/hearth/default.conf)
#     runs as the hearth user under setpriv (no new privileges, no capabilities at all) and
#     answers a completion request. systemd does not run in the root (CI has no booted systemd),
#     so the rest of the unit's sandbox is checked statically by systemd-analyze, not exercised;
#   - an upgrade to the higher version keeps the store and the edited configuration;
#   - `apt-get remove` keeps /var/lib/hearth and /etc/hearth; `dpkg --purge` deletes them.
# The clean root is a debootstrap of bookworm (minbase) from this machine's apt mirror, made once
# (about 4 minutes) and cached as a tarball in $HEARTH_DEB_ROOT_CACHE (default
# ~/.cache/hearth/debian12-minbase.tar); each run unpacks a fresh copy. The packages that hearth
# depends on are cached in the same directory after the first download.
# Usage: package_test.sh HEARTH_BIN
set -euo pipefail
bin=$(readlink -f "$1")
src=$(cd "$(dirname "$0")/../.." && pwd)
skip() {
  if [ "${CI:-}" = true ]; then echo "FAIL: $*" >&2; exit 1; fi
  echo "SKIP: $*"; exit 0
}
[ "$(id -u)" -eq 0 ] || skip "needs root (chroot, dpkg in the root)"
for tool in dpkg-deb dpkg-shlibdeps help2man debootstrap systemd-analyze unshare curl; do
  command -v "$tool" >/dev/null || skip "$tool is missing (scripts/setup.sh installs it)"
done
cache=${HEARTH_DEB_ROOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hearth}
work=$(mktemp -d /tmp/hearth-pkg.XXXXXX)
root=$work/root
failed=0
serve_pid=""
cleanup() {
  [ -n "$serve_pid" ] && kill -KILL "$serve_pid" 2>/dev/null || true
  if [ $failed -eq 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; failed=1; exit 1; }
start=$SECONDS
t() { echo "[$((SECONDS - start)) s] $*"; }

# In the root, with its own /proc and the package cache bind-mounted (a private mount namespace:
# nothing stays mounted when it ends).
in_root() {
  unshare --mount --propagation private sh -c '
    mount -t proc proc "$1/proc" && mount --bind "$2" "$1/var/cache/apt/archives" && shift 2 &&
    exec chroot "$0" "$@"' "$root" "$root" "$cache/debs" "$@"
}
# As the hearth user, the way the units run it: no new privileges, no capabilities, no
# inherited environment but the unit's.
as_hearth() { in_root setpriv --reuid=hearth --regid=hearth --init-groups --no-new-privs --inh-caps=-all \
  --bounding-set=-all env -i PATH=/usr/bin:/bin HEARTH_HOME=/var/lib/hearth "$@"; }

# --- the clean root, cached ----------------------------------------------------------------------
mkdir -p "$cache/debs/partial"
tarball=$cache/debian12-minbase.tar
if [ ! -f "$tarball" ]; then
  mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/* *$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  mirror=${mirror:-$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)}
  mirror=${mirror:-http://deb.debian.org/debian}
  t "making the Debian 12 root (debootstrap --variant=minbase bookworm $mirror; once, cached in $tarball)"
  mkdir -p "$work/boot"
  debootstrap --variant=minbase bookworm "$work/boot" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    fail "debootstrap: $(tail -5 "$work/debootstrap.log")"
  chroot "$work/boot" apt-get update -qq >/dev/null 2>&1 || fail "apt-get update in the root"
  chroot "$work/boot" apt-get clean
  tar -C "$work/boot" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  rm -rf "$work/boot"
fi
mkdir -p "$root"
tar -C "$root" -xf "$tarball"
[ -f "$root/etc/debian_version" ] && grep -q '^12' "$root/etc/debian_version" || fail "the root is not Debian 12"
t "root unpacked"

# --- the packages ----------------------------------------------------------------------------------
base=$(sed -n 's/^project(hearth VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
v1=$base~test1 v2=$base~test2
# (into the cache directory: package.sh keeps the generated man page and completions there, by
# the binary's digest, so the second package and later runs on the same binary reuse them)
deb1=$("$src/scripts/package.sh" --bin "$bin" --version "$v1" --out "$cache/packages") || fail "package.sh $v1"
deb2=$("$src/scripts/package.sh" --bin "$bin" --version "$v2" --out "$cache/packages") || fail "package.sh $v2"
t "built $(basename "$deb1") and $(basename "$deb2")"
dpkg --compare-versions "$v2" gt "$v1" || fail "$v2 is not above $v1"
listing=$(dpkg-deb -c "$deb1")
contents=$(awk '{print $NF}' <<<"$listing")
for f in ./usr/bin/hearth ./usr/share/man/man1/hearth.1.gz ./usr/share/bash-completion/completions/hearth \
         ./usr/share/zsh/vendor-completions/_hearth ./lib/systemd/system/hearth-serve@.service \
         ./lib/systemd/system/hearth-agent.service ./lib/systemd/system/hearth-controller.service \
         ./etc/hearth/default.conf ./etc/hearth/agent.conf ./etc/hearth/controller.conf; do
  grep -qxF "$f" <<<"$contents" || fail "$f is not in the package"
done
grep -q -- '-rwxr-xr-x root/root .* ./usr/bin/hearth$' <<<"$listing" || fail "usr/bin/hearth is not root-owned 0755"
dpkg-deb -f "$deb1" Depends | grep -q 'libssl3' || fail "Depends has no libssl3: $(dpkg-deb -f "$deb1" Depends)"
dpkg-deb --ctrl-tarfile "$deb1" | tar -xO ./conffiles >"$work/conffiles"
grep -qx /etc/hearth/default.conf "$work/conffiles" || fail "default.conf is not a conffile"
# The man page and completions come from the binary's own help: every command, and a flag deep down.
dpkg-deb --fsys-tarfile "$deb1" | tar -xO ./usr/share/man/man1/hearth.1.gz | gunzip >"$work/hearth.1"
for cmd in "hearth serve" "hearth fleet rollout start" "hearth bundle import" "hearth agent run"; do
  grep -q "^\.SS \"$cmd\"" "$work/hearth.1" || fail "the man page has no section '$cmd'"
done
grep -q -- 'log\\-prompts\|log-prompts' "$work/hearth.1" || fail "the man page does not mention --log-prompts"
dpkg-deb --fsys-tarfile "$deb1" | tar -xO ./usr/share/bash-completion/completions/hearth >"$work/hearth.bash"
got=$(bash -c 'source "$1"; COMP_WORDS=(hearth fleet rollout st); COMP_CWORD=3; _hearth; echo "${COMPREPLY[*]}"' _ "$work/hearth.bash")
[ "$got" = "start status" ] || fail "bash completion of 'hearth fleet rollout st' gave '$got'"
got=$(bash -c 'source "$1"; COMP_WORDS=(hearth serve --log-p); COMP_CWORD=2; _hearth; echo "${COMPREPLY[*]}"' _ "$work/hearth.bash")
[ "$got" = "--log-prompts" ] || fail "bash completion of 'hearth serve --log-p' gave '$got'"
dpkg-deb --fsys-tarfile "$deb1" | tar -xO ./usr/share/zsh/vendor-completions/_hearth >"$work/_hearth"
if command -v zsh >/dev/null; then zsh -n "$work/_hearth" || fail "the zsh completion does not parse"; fi

# --- install into the clean root ------------------------------------------------------------------
cp "$deb1" "$deb2" "$root/tmp/"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "/tmp/$(basename "$deb1")" \
  >"$work/install1.log" 2>&1 || fail "apt-get install: $(tail -20 "$work/install1.log")"
t "installed $v1 with its dependencies"
[ "$(in_root dpkg-query -W -f='${Version}' hearth)" = "$v1" ] || fail "hearth $v1 is not installed"
pw=$(in_root getent passwd hearth) || fail "no hearth user"
[[ "$pw" == hearth:x:*:*:*:/var/lib/hearth:/usr/sbin/nologin ]] || fail "the hearth user is '$pw'"
[ "$(in_root stat -c '%U:%G %a' /var/lib/hearth)" = "hearth:hearth 750" ] ||
  fail "/var/lib/hearth is $(in_root stat -c '%U:%G %a' /var/lib/hearth)"
in_root hearth --version | grep -q "^hearth " || fail "hearth --version in the root"

# The units as packaged. The minimal root has no systemd, so they are checked by this machine's
# systemd-analyze, on copies whose ExecStart names the package's binary unpacked here instead of
# /usr/bin/hearth (verify checks that the command exists); nothing else in them changes.
mkdir -p "$work/x" "$work/units"
dpkg-deb -x "$deb1" "$work/x"
for u in hearth-serve@.service hearth-agent.service hearth-controller.service; do
  sed "s#/usr/bin/hearth #$work/x/usr/bin/hearth #" "$work/x/lib/systemd/system/$u" >"$work/units/$u"
  cmp -s <(sed "s#$work/x/usr/bin/hearth #/usr/bin/hearth #" "$work/units/$u") "$work/x/lib/systemd/system/$u" ||
    fail "the copy of $u differs in more than the binary's path"
  systemd-analyze verify --man=no "$work/units/$u" >"$work/verify.log" 2>&1 ||
    fail "systemd-analyze verify $u: $(cat "$work/verify.log")"
  [ -s "$work/verify.log" ] && fail "systemd-analyze verify $u said: $(cat "$work/verify.log")"
  score=$(systemd-analyze security --offline=true "$work/units/$u" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  [ -n "$score" ] || fail "no security score for $u"
  awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "$u is rated $score (more than 2.0)"
  echo "security: $u $score"
done

# A model for the default instance (the binary trains one in seconds: nothing from ../shared).
"$bin" train --corpus /usr/share/common-licenses/GPL-3 --stories 30 --preset nano --steps 2 -t 2 --sample-tokens 0 \
  --out "$work/model.gguf" >"$work/train.log" 2>&1 || fail "train: $(tail -3 "$work/train.log")"
install -o "$(in_root id -u hearth)" -g "$(in_root id -g hearth)" -m 0640 "$work/model.gguf" "$root/var/lib/hearth/models/model.gguf"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
       echo $((20000 + RANDOM % 20000)))
# The operator edits the instance's configuration (the conffile): the upgrade must keep it.
sed -i "s/^HEARTH_PORT=.*/HEARTH_PORT=$port/; s/^HEARTH_SERVE_ARGS=.*/HEARTH_SERVE_ARGS=\"-c 128 --alias packaged\"/" \
  "$root/etc/hearth/default.conf"

# The unit's command line: ExecStart, with ${VAR} and $VAR from its Environment= lines and then
# the EnvironmentFile (systemd's order), run by sh as the hearth user.
unit=$root/lib/systemd/system/hearth-serve@.service
envs=$(sed -n 's/^Environment=//p' "$unit" | tr ' ' '\n' | grep -v '^HEARTH_HOME=' | sed "s/=\(.*\)/='\1'/")
exec_start=$(sed -n 's/^ExecStart=//p' "$unit" | sed 's/\${\([A-Z_]*\)}/$\1/g')
[[ "$exec_start" == "/usr/bin/hearth serve "* ]] || fail "unexpected ExecStart: $exec_start"
as_hearth sh -c "$envs
set -a; . /etc/hearth/default.conf; set +a
exec $exec_start" >"$work/serve.log" 2>&1 &
serve_pid=$!
ok=0
for _ in $(seq 150); do curl -sf -o /dev/null "http://127.0.0.1:$port/health" && { ok=1; break; }; sleep 0.1; done
[ $ok -eq 1 ] || fail "the packaged serve did not answer on $port: $(tail -5 "$work/serve.log")"
code=$(curl -s -o "$work/answer.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"prompt":"Once upon a time","max_tokens":8}' "http://127.0.0.1:$port/v1/completions")
[ "$code" = 200 ] || fail "the completion answered $code: $(cat "$work/answer.json")"
grep -q '"model":"packaged"' "$work/answer.json" || fail "the answer is not from the configured instance: $(cat "$work/answer.json")"
grep -q '"completion_tokens":[1-9]' "$work/answer.json" || fail "no tokens generated: $(cat "$work/answer.json")"
# It runs as the hearth user, with no capability and no_new_privs.
# (the process under this shell's child whose executable is the root's /usr/bin/hearth)
hpid="" todo=("$serve_pid")
while [ ${#todo[@]} -gt 0 ] && [ -z "$hpid" ]; do
  p=${todo[0]}; todo=("${todo[@]:1}")
  [ "$(readlink -f "/proc/$p/exe" 2>/dev/null)" = "$root/usr/bin/hearth" ] && hpid=$p
  todo+=($(pgrep -P "$p" || true))
done
[ -n "$hpid" ] || fail "cannot find the serve process"
[ "$(stat -c %u "/proc/$hpid")" = "$(in_root id -u hearth)" ] || fail "serve runs as uid $(stat -c %u "/proc/$hpid")"
grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$hpid/status" || fail "serve is not no_new_privs"
grep -q '^CapEff:[[:space:]]*0*$' "/proc/$hpid/status" && grep -q '^CapBnd:[[:space:]]*0*$' "/proc/$hpid/status" ||
  fail "serve has capabilities: $(grep ^Cap "/proc/$hpid/status")"
kill -TERM "$hpid"
wait "$serve_pid" || true
serve_pid=""
t "the packaged serve answered as the hearth user"

# Data in the store, as the service user would make it.
as_hearth hearth import /var/lib/hearth/models/model.gguf local/model:v1 >/dev/null 2>"$work/import.log" ||
  fail "import as hearth: $(cat "$work/import.log")"
as_hearth hearth list | grep -q 'local/model' || fail "hearth list does not show the import"

# --- upgrade, remove, purge -----------------------------------------------------------------------
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "/tmp/$(basename "$deb2")" \
  >"$work/install2.log" 2>&1 || fail "upgrade: $(tail -20 "$work/install2.log")"
[ "$(in_root dpkg-query -W -f='${Version}' hearth)" = "$v2" ] || fail "the upgrade did not install $v2"
as_hearth hearth list | grep -q 'local/model' || fail "the upgrade lost the store"
grep -q "^HEARTH_PORT=$port$" "$root/etc/hearth/default.conf" || fail "the upgrade replaced the edited default.conf"
[ -f "$root/var/lib/hearth/models/model.gguf" ] || fail "the upgrade lost /var/lib/hearth/models"
t "upgraded to $v2: store and configuration kept"

in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq hearth >"$work/remove.log" 2>&1 || fail "remove: $(cat "$work/remove.log")"
[ ! -e "$root/usr/bin/hearth" ] || fail "remove left /usr/bin/hearth"
[ -d "$root/var/lib/hearth/store" ] || fail "remove deleted the store"
grep -q "^HEARTH_PORT=$port$" "$root/etc/hearth/default.conf" || fail "remove deleted the configuration"
in_root dpkg --purge hearth >"$work/purge.log" 2>&1 || fail "purge: $(cat "$work/purge.log")"
[ ! -e "$root/var/lib/hearth" ] || fail "purge left /var/lib/hearth"
[ ! -e "$root/etc/hearth" ] || fail "purge left /etc/hearth"
t "remove kept the data, purge deleted it"
echo "PASS: package built, installed in a clean Debian 12 root, served as hearth, upgraded, removed, purged ($((SECONDS - start)) s)"

#!/usr/bin/env bash
# Load test: wrk against `hearth serve` on loopback for a bounded time (WRK_DURATION, default
# 10s). Fails on any socket error or non-2xx response; prints throughput. wrk's timeout is 30 s, not
# its default 2 s: on a loaded 2-core machine a request may queue longer, which is not an error.
# Usage: load_test.sh HEARTH_BIN MODEL
set -euo pipefail
bin=$1 model=$2
duration=${WRK_DURATION:-10s}
if [ ! -f "$model" ]; then
  if [ "${CI:-}" = true ]; then echo "test model $model not found" >&2; exit 1; fi
  echo "SKIP: test model $model not found"; exit 0
fi
work=$(mktemp -d)
log=$work/serve.log
HEARTH_LOG=info "$bin" serve "$model" --host 127.0.0.1 --port 0 -c 512 --parallel 4 --max-queue 256 2>"$log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=
for _ in $(seq 300); do
  port=$(sed -n 's/.*listening on http:\/\/[^ ]*:\([0-9]*\).*/\1/p' "$log" | head -1)
  if [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/health" >/dev/null; then break; fi
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "server did not start" >&2; cat "$log" >&2; exit 1; }

cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"prompt":"Once upon a time","max_tokens":16,"temperature":0}'
LUA
out=$(wrk -t2 -c8 -d"$duration" --timeout 30s --latency -s "$work/post.lua" "http://127.0.0.1:$port/v1/completions")
echo "$out"
if echo "$out" | grep -q "Non-2xx or 3xx responses"; then echo "FAIL: non-2xx responses" >&2; exit 1; fi
if echo "$out" | grep -q "Socket errors"; then echo "FAIL: socket errors" >&2; exit 1; fi
reqs=$(echo "$out" | awk '/requests in/ {print $1}')
[ "${reqs:-0}" -gt 0 ] || { echo "FAIL: no requests completed" >&2; exit 1; }
rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
tokps=$(awk -v r="$rps" 'BEGIN { printf "%.1f", r * 16 }')
echo "throughput: $reqs requests, $rps req/s, $tokps generated tok/s (16 tokens per request)"
kill -TERM "$pid"; wait "$pid" || { echo "FAIL: the server did not exit cleanly" >&2; exit 1; }

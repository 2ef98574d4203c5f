#!/usr/bin/env bash
# The main job, end to end: install dependencies, build, serve $HEARTH_MODEL on loopback, answer
# one chat request with curl, and stop the server.
#   HEARTH_MODEL=../shared/models/stories260K-f32.gguf scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
: "${HEARTH_MODEL:?set HEARTH_MODEL to a GGUF file, e.g. ../shared/models/stories260K-f32.gguf}"
PORT=${HEARTH_PORT:-8080}
CTX=${HEARTH_CTX:-512}
LOG=$(mktemp -t hearth-demo.XXXXXX)
build/bin/hearth serve "$HEARTH_MODEL" --host 127.0.0.1 --port "$PORT" -c "$CTX" >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 100); do
  if curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 $SERVER 2>/dev/null; then cat "$LOG"; echo "demo: the server exited" >&2; exit 1; fi
  sleep 0.2
done
echo "== POST /v1/chat/completions"
curl -sf "http://127.0.0.1:$PORT/v1/chat/completions" -H 'Content-Type: application/json' -d '{
  "messages": [{"role": "user", "content": "Tell me a story about a little dog."}],
  "max_tokens": 64,
  "temperature": 0
}'
echo

#!/usr/bin/env bash
# The main job, end to end: install dependencies, build, serve a model on loopback, answer one
# chat request with curl, and stop the server.
#   scripts/demo.sh                                               # hearth's demo model (see below)
#   HEARTH_MODEL=../shared/models/stories260K-f32.gguf scripts/demo.sh  # any other GGUF model
# Without HEARTH_MODEL, hearth trains its small demo model on this machine the first time (about
# 3 minutes on 2 cores) and caches it under ~/.cache/hearth; later runs reuse it. Its corpus is
# text every Debian system has (/usr/share/common-licenses) plus short stories that hearth
# generates from its own grammar: nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
PORT=${HEARTH_PORT:-8080}
CTX=${HEARTH_CTX:-512}

if [ -z "${HEARTH_MODEL:-}" ]; then
  CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/hearth"
  # Bump the version when the recipe changes, so that an old cached model is not reused.
  HEARTH_MODEL="$CACHE/demo-v1.gguf"
  if [ -f "$HEARTH_MODEL" ]; then
    echo "demo: using the cached demo model $HEARTH_MODEL"
  else
    mkdir -p "$CACHE"
    CORPUS=()
    [ -d /usr/share/common-licenses ] && CORPUS=(--corpus /usr/share/common-licenses)
    echo "demo: training hearth's demo model on this machine (about 3 minutes, once)"
    # The output is written atomically: an interrupted run leaves no half model in the cache.
    build/bin/hearth train "${CORPUS[@]}" --stories 2000 --preset micro --ctx 256 --time 2m40s --seed 1 \
      --out "$HEARTH_MODEL" --checkpoint "$CACHE/demo-v1.ckpt" \
      --sample-prompt $'User: Tell me a story about a little dog.\n\nAssistant:'
    rm -f "$CACHE/demo-v1.ckpt"
  fi
  CTX=256  # the demo model's context
fi

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

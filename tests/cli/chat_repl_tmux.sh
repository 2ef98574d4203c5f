#!/usr/bin/env bash
# `hearth chat` and `hearth run` (no prompt, on a terminal) driven from a real terminal (tmux):
# a streamed reply, Ctrl-C stopping a long reply without leaving, /system, /save + /reset +
# /load, /bye. Usage: chat_repl_tmux.sh HEARTH_BIN MODEL
set -euo pipefail
bin=$1 model=$2
if [ ! -f "$model" ]; then
  if [ "${CI:-}" = true ]; then echo "test model $model not found" >&2; exit 1; fi
  echo "SKIP: test model $model not found"; exit 0
fi
command -v tmux >/dev/null || { echo "tmux is missing (scripts/setup.sh installs it)" >&2; exit 1; }
work=$(mktemp -d)
sock=$work/tmux.sock
session=hearth-chat
t() { tmux -S "$sock" "$@"; }
cleanup() { t kill-server 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "--- pane:" >&2; t capture-pane -p -t "$session" -S -200 >&2 || true; exit 1; }
pane() { t capture-pane -p -t "$session" -S -200; }
# wait_for REGEX [SECONDS]: until the pane matches.
wait_for() {
  local deadline=$((SECONDS + ${2:-20}))
  until pane | grep -qE "$1"; do
    [ $SECONDS -lt $deadline ] || fail "timed out waiting for /$1/"
    sleep 0.2
  done
}
prompts() { pane | grep -cE '^>>>' || true; }

# 1. hearth chat: a reply streams, Ctrl-C stops a long one, the REPL goes on.
t new-session -d -s "$session" -x 160 -y 50 \
  "HEARTH_HOME=$work/home $bin chat $model -c 8192 --temp 0 --ignore-eos; echo EXITED=\$?; sleep 30"
wait_for '^>>> ?$'
t send-keys -t "$session" 'Once upon a time' Enter
# --ignore-eos with an 8192-token context: a reply of about 8000 tokens (tens of seconds), which
# is stopped as soon as some of it has streamed.
wait_for 'Once upon a time$' 10
wait_for '^ [A-Za-z].{40}' 10
t send-keys -t "$session" C-c
wait_for '^\(stopped\)$' 10
wait_for '^>>> ?$' 10
reply=$(pane | sed -n '/^>>> Once upon a time$/,/^(stopped)$/p' | sed '1d;$d' | tr -d '\n')
[ "${#reply}" -gt 40 ] || fail "no reply streamed before Ctrl-C (got '$reply')"
# Ctrl-C at the prompt does not leave either.
t send-keys -t "$session" C-c
sleep 0.5
pane | grep -q EXITED && fail "Ctrl-C at the prompt ended the REPL"
# /system clears and sets; /save, /reset, /load round-trip the conversation.
t send-keys -t "$session" '/system You tell short stories.' Enter
wait_for 'system message set'
t send-keys -t "$session" "/save $work/conv.json" Enter
wait_for 'saved 1 messages'
grep -q '"You tell short stories."' "$work/conv.json" || fail "/save did not write the system message"
t send-keys -t "$session" '/reset' Enter
wait_for 'conversation is cleared'
t send-keys -t "$session" "/load $work/conv.json" Enter
wait_for 'loaded 1 messages'
t send-keys -t "$session" '/nope' Enter
wait_for "unknown command '/nope'"
t send-keys -t "$session" '/bye' Enter
wait_for 'EXITED=0'
t kill-session -t "$session"

# 2. hearth run with no prompt on a terminal opens the same REPL; Ctrl-D leaves.
t new-session -d -s "$session" -x 160 -y 50 \
  "HEARTH_HOME=$work/home $bin run $model -c 512 --temp 0 -n 16; echo EXITED=\$?; sleep 30"
wait_for '^>>> ?$'
t send-keys -t "$session" 'Lily and Ben' Enter
wait_for '^>>> ?$' 20
[ "$(prompts)" -ge 2 ] || fail "no second prompt after the reply"
t send-keys -t "$session" C-d
wait_for 'EXITED=0'
echo "PASS: chat REPL in tmux"

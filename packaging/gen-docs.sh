#!/usr/bin/env bash
# The man page and the shell completions, generated from the CLI's own --help (every command and
# subcommand, recursively), so they cannot drift from the binary that they ship with.
# Usage: packaging/gen-docs.sh HEARTH_BIN OUTDIR   (writes OUTDIR/hearth.1, hearth.bash, _hearth)
# HEARTH_BIN must run on this machine (for a cross build: under qemu-user, or the native binary
# of the same source: the help text does not depend on the architecture).
set -euo pipefail
bin=$(readlink -f "$1") out=$2
command -v help2man >/dev/null || { echo "gen-docs: help2man is missing (apt-get install help2man)" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Every command path ("", "run", "fleet", "fleet rollout", ...), depth first, in --help order;
# each one's help is read once (help/KEY, KEY = the path with ':' for spaces).
paths=()
mkdir -p "$tmp/help"
help_of() { cat "$tmp/help/x${1// /:}"; }
walk() {
  paths+=("$*")
  local key="x$*"
  HOME=$tmp "$bin" "$@" --help >"$tmp/help/${key// /:}" 2>/dev/null
  local sub
  for sub in $(help_of "$*" | sed -n '/^Subcommands:/,/^$/p' | awk '/^  [a-z]/{print $1}'); do
    walk "$@" "$sub"
  done
}
walk
# The subcommands and the options of each command path (the first column of its help), read
# by one awk per path: tables/KEY holds two lines, the subcommands and then the options.
mkdir -p "$tmp/tables"
for p in "${paths[@]}"; do
  k=x${p// /:}
  awk '/^Subcommands:/ { in_subs = 1; next }
       /^$/ { in_subs = 0 }
       in_subs && /^  [a-z]/ { subs = subs $1 " " }
       /^  -/ { n = split($1, names, ","); for (i = 1; i <= n; i++) if (match(names[i], /^--?[A-Za-z0-9][A-Za-z0-9-]*/)) {
                  o = substr(names[i], 1, RLENGTH); if (!(o in seen)) { seen[o] = 1; opts = opts o " " } } }
       END { print subs; print opts }' "$tmp/help/$k" >"$tmp/tables/$k"
done
subs_of() { local k=x${1// /:}; sed -n 1p "$tmp/tables/$k"; }
opts_of() { local k=x${1// /:}; sed -n 2p "$tmp/tables/$k"; }

# --- man page: help2man on the top level, every command's help in COMMANDS ----------------------
{
  echo "[COMMANDS]"
  for p in "${paths[@]}"; do
    [ -n "$p" ] || continue
    echo ".SS \"hearth $p\""
    echo ".nf"
    # The usage line names the binary's path; the page names the command.
    help_of "$p" | sed "s#^Usage: [^ ]*#Usage: hearth#; s/\\\\/\\\\e/g; s/^\\./\\\\\\&./"
    echo ".fi"
  done
  cat <<'EOF'
[ENVIRONMENT]
.TP
.B HEARTH_HOME
the store, trust policy, audit log and fleet identity (default ~/.local/share/hearth; the packaged services use /var/lib/hearth)
.TP
.B HEARTH_MODEL
the model when a command is given none
.TP
.B HEARTH_ISA
force a kernel table (ref, avx2, avx512, ...)
.TP
.B HEARTH_LOG
debug, info, warn or error
[FILES]
.TP
.I /etc/hearth/NAME.conf
the configuration of the hearth-serve@NAME service (HEARTH_MODEL, HEARTH_HOST, HEARTH_PORT, HEARTH_SERVE_ARGS)
.TP
.I /etc/hearth/agent.conf, /etc/hearth/controller.conf
the flags of hearth-agent.service and hearth-controller.service
.TP
.I /var/lib/hearth
the services' HEARTH_HOME, owned by the hearth system user
[PRIVACY]
hearth sends nothing anywhere on its own: no telemetry, no calls home. It connects only to what
a command names (a registry or mirror for pull/push, a fleet's broker and controller), and
prompts are never logged unless serve's --log-prompts.
EOF
} >"$tmp/include"
# help2man runs the binary with --help and --version; SOURCE_DATE_EPOCH keeps the date reproducible.
HOME=$tmp help2man --no-info --no-discard-stderr --section 1 --name "run open-weight AI models on hardware you own" \
  --include "$tmp/include" --output "$out/hearth.1" "$bin"
# help2man names the page after the file it ran.
sed -i "s#$(basename "$bin")#hearth#g; s#$bin#hearth#g" "$out/hearth.1"

# --- bash -------------------------------------------------------------------------------------
{
  echo "# bash completion for hearth (generated from its --help by packaging/gen-docs.sh)"
  echo "declare -gA _hearth_subs=() _hearth_opts=()"
  for p in "${paths[@]}"; do
    k=x${p// /:}
    printf "_hearth_subs[%s]='%s'\n_hearth_opts[%s]='%s'\n" "$k" "$(subs_of "$p")" "$k" "$(opts_of "$p")"
  done
  cat <<'EOF'
_hearth() {
  local cur=${COMP_WORDS[COMP_CWORD]} path="" i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    [[ " ${_hearth_subs[x$path]} " == *" $w "* ]] && path="${path:+$path:}$w"
  done
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "${_hearth_opts[x$path]}" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "${_hearth_subs[x$path]}" -- "$cur") $(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F _hearth hearth
EOF
} >"$out/hearth.bash"

# --- zsh --------------------------------------------------------------------------------------
{
  echo "#compdef hearth"
  echo "# zsh completion for hearth (generated from its --help by packaging/gen-docs.sh)"
  echo "typeset -gA _hearth_subs _hearth_opts"
  for p in "${paths[@]}"; do
    k=x${p// /:}
    printf "_hearth_subs[%s]='%s'\n_hearth_opts[%s]='%s'\n" "$k" "$(subs_of "$p")" "$k" "$(opts_of "$p")"
  done
  cat <<'EOF'
_hearth() {
  local path="" i w
  for ((i = 2; i < CURRENT; i++)); do
    w=${words[i]}
    [[ " ${_hearth_subs[x$path]} " == *" $w "* ]] && path="${path:+$path:}$w"
  done
  if [[ "$PREFIX" == -* ]]; then
    compadd -- ${=_hearth_opts[x$path]}
  else
    compadd -- ${=_hearth_subs[x$path]}
    _files
  fi
}
_hearth "$@"
EOF
} >"$out/_hearth"
echo "gen-docs: ${#paths[@]} command paths -> $out/hearth.1, hearth.bash, _hearth"

#!/usr/bin/env bash
# The full round trip of a model over 8 GiB through the store and an air-gap bundle:
# import -> bundle export -> bundle import into a second store -> store check, with GNU tar as
# an independent reader of the bundle's size fields. The model is one F32 tensor of
# 9 GiB + 4 bytes whose data is a hole in a sparse file; the store and the bundle hold real
# zeros, so this writes about 27 GiB: it is a benchmark, not a CI test (CI runs the tar-layer
# test, Bundle.SizesOf8GiBAndMoreRoundTripInTheTarHeader).
# Usage: bench/bundle_8gib.sh [HEARTH_BINARY] [WORK_DIR]   (needs python3 and ~30 GiB free)
set -euo pipefail
HEARTH=${1:-build/bin/hearth}
WORK=${2:-/var/tmp/hearth-8gib}
HEARTH=$(realpath "$HEARTH")
rm -rf "$WORK"; mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
free_gib=$(df -BG --output=avail "$WORK" | tail -1 | tr -dc 0-9)
[ "$free_gib" -ge 30 ] || { echo "bundle_8gib: needs 30 GiB free in $WORK, has ${free_gib} GiB" >&2; exit 1; }

python3 - "$WORK/big.gguf" <<'PY'
import struct, sys
n = 9 * 2**28 + 1                       # F32 elements: 9 GiB + 4 bytes of data
def s(x): b = x.encode(); return struct.pack("<Q", len(b)) + b
kv = s("general.architecture") + struct.pack("<I", 8) + s("llama")
kv += s("general.name") + struct.pack("<I", 8) + s("big")
ti = s("big.weight") + struct.pack("<I", 1) + struct.pack("<Q", n) + struct.pack("<I", 0) + struct.pack("<Q", 0)
head = b"GGUF" + struct.pack("<IQQ", 3, 1, 2) + kv + ti
head += b"\0" * (-len(head) % 32)
with open(sys.argv[1], "wb") as f:
    f.write(head)
    f.truncate(len(head) + 4 * n)       # the tensor data: a hole
PY
size=$(stat -c %s "$WORK/big.gguf")
echo "model: $size bytes ($(du -h "$WORK/big.gguf" | cut -f1) on disk)"

t() { local s=$(date +%s.%N); "$@"; echo "  $(echo "$(date +%s.%N) - $s" | bc) s: ${*:2:2}" >&2; }
export HEARTH_HOME="$WORK/a"
t "$HEARTH" import "$WORK/big.gguf" big/model:v1 --model-version 1 >/dev/null
t "$HEARTH" bundle export big/model:v1 "$WORK/big.tar" >/dev/null
rm "$WORK/big.gguf"
# GNU tar reads the bundle's size fields on its own (base-256 above 8 GiB).
listed=$(tar -tvf "$WORK/big.tar" | awk -v want="$size" '$3 == want {print $6}')
[ -n "$listed" ] || { echo "FAIL: GNU tar lists no entry of $size bytes" >&2; tar -tvf "$WORK/big.tar" >&2; exit 1; }
echo "GNU tar: $listed is $size bytes"
rm -rf "$WORK/a"
export HEARTH_HOME="$WORK/b"
t "$HEARTH" bundle import "$WORK/big.tar" --allow-unsigned >/dev/null
rm "$WORK/big.tar"
t "$HEARTH" store check
blob="$WORK/b/store/blobs/sha256/${listed##*/}"
[ "$(stat -c %s "$blob")" = "$size" ] || { echo "FAIL: imported blob is $(stat -c %s "$blob") bytes, want $size" >&2; exit 1; }
"$HEARTH" inspect big/model:v1 --allow-unsigned | head -5
echo "bundle_8gib: round trip of a $size-byte model OK"

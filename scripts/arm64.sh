#!/usr/bin/env bash
# The arm64 (AArch64) cross build and its tests under user-mode emulation.
#
#   scripts/arm64.sh setup   install the cross toolchain, qemu and the arm64 libraries (idempotent; root)
#   scripts/arm64.sh build   cross-build core, kernels and their unit tests into build-arm64/
#   scripts/arm64.sh test    run the kernel and core tests under qemu-aarch64, once per CPU model
#                            (cortex-a53, cortex-a76, max) and kernel table (HEARTH_ISA)
#   scripts/arm64.sh count [FILE]  instructions executed per kernel call, per table (README "ARM64")
#   scripts/arm64.sh all     setup, build, test
#   scripts/arm64.sh quick   build only the table tests and run a short check under -cpu max
#                            (cold build + run: ~72 s of CPU; see the README's ARM64 section)
#
# What builds for arm64: the kernels library (core + kernels) and the core/kernel unit tests
# (HEARTH_KERNELS_ONLY). The rest of hearth needs arm64 builds of boost, protobuf, sqlite, ...
# that this script does not install.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HEARTH_ARM64_BUILD:-$ROOT/build-arm64}
TRIPLE=aarch64-linux-gnu
# qemu's -L prefix: the arm64 loader and libraries of the multiarch install (libc6:arm64 in
# /lib/aarch64-linux-gnu, beside the :arm64 libraries the tests link), never the cross
# toolchain's /usr/aarch64-linux-gnu. That directory holds libc6-arm64-cross's own
# ld-linux-aarch64.so.1 but not the other libraries, so with -L there qemu paired the cross
# loader (2.36-8cross1) with the multiarch libc.so.6 (2.36-9+deb12u14); the two share the
# private _rtld_global, and the first pthread_create then walked its stack cache list forever
# (every threaded test "stalled" under qemu).
QEMU_PREFIX=/
JOBS=${JOBS:-2}

# Debian 12 packages: the cross compiler, the emulator, and the arm64 halves of core's and the
# tests' libraries (multiarch; Multi-Arch: same, so they sit beside the amd64 ones).
HOST_PKGS=(g++-12-aarch64-linux-gnu qemu-user-static)
ARM64_PKGS=(libc6:arm64 libfmt-dev:arm64 libspdlog-dev:arm64 libssl-dev:arm64 libgtest-dev:arm64)

die() { echo "arm64.sh: $*" >&2; exit 1; }

setup() {
  local missing=()
  for p in "${HOST_PKGS[@]}" "${ARM64_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && { echo "arm64.sh: toolchain and arm64 libraries present"; return 0; }
  [ "$(id -u)" -eq 0 ] || die "needs root to install: ${missing[*]}"
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

qemu() {
  command -v qemu-aarch64-static 2>/dev/null || command -v qemu-aarch64 2>/dev/null || die "no qemu-aarch64 (run: scripts/arm64.sh setup)"
}

# Builds the given targets (default: every arm64 test program).
build() {
  command -v $TRIPLE-g++-12 >/dev/null || die "no $TRIPLE-g++-12 (run: scripts/arm64.sh setup)"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/toolchains/aarch64.cmake" \
    -DHEARTH_KERNELS_ONLY=ON -DHEARTH_BUILD_TESTS=ON >/dev/null
  local targets=("$@")
  [ ${#targets[@]} -gt 0 ] || targets=(kernels_table_test kernels_quant_test core_test arm64_tables_test kernel_calls)
  nice -n 5 cmake --build "$BUILD" -j"$JOBS" --target "${targets[@]}"
  # The ISA flags stay in their translation units: no file but dotprod.cpp / i8mm.cpp holds an
  # sdot or smmla instruction.
  local objdir="$BUILD/src/hearth/kernels/CMakeFiles/hearth_kernels.dir"
  local bad
  bad=$(for o in $(find "$objdir" -name '*.o' ! -name 'dotprod.cpp.o' ! -name 'i8mm.cpp.o'); do
          $TRIPLE-objdump -d "$o" | grep -qE '\s(sdot|udot|smmla|ummla|usmmla)\s' && echo "$o"
        done || true)
  [ -z "$bad" ] || die "dotprod/i8mm instructions outside their translation units: $bad"
  # ... and those two define no weak (COMDAT) symbol that the linker could pick for a caller in
  # another file (an inline function compiled with +dotprod reaching a plain ARMv8.0 CPU).
  local weak
  weak=$($TRIPLE-nm -C --defined-only "$objdir/arm/neon/dotprod.cpp.o" "$objdir/arm/neon/i8mm.cpp.o" | grep -E ' [WVu] ' || true)
  [ -z "$weak" ] || die "weak symbols in the dotprod/i8mm objects: $weak"
  echo "arm64.sh: built $BUILD (sdot/smmla only in dotprod.cpp.o and i8mm.cpp.o, no weak symbols there)"
}

# Runs one test binary under qemu with a CPU model and HEARTH_ISA; HEARTH_EMULATED=1 tells the
# kernel op tests to leave out their longest attention prompts (see kernel_ops_test.cpp).
run_one() {
  local cpu=$1 isa=$2 bin=$3 t0=$SECONDS
  shift 3
  echo "== qemu -cpu $cpu, HEARTH_ISA=$isa: $(basename "$bin") $*"
  HEARTH_EMULATED=1 HEARTH_ISA=$isa timeout "${HEARTH_ARM64_TIMEOUT:-1800}" \
    "$(qemu)" -cpu "$cpu" -L "$QEMU_PREFIX" "$BUILD/$bin" "$@"
  echo "   ($((SECONDS - t0)) s)"
}

test_all() {
  local k=tests/unit/kernels c=tests/unit/core a=tests/arm64
  # HWCAP detection and HEARTH_ISA: each emulated CPU model offers exactly the tables its
  # documented features allow, and HEARTH_ISA picks the engine's table:
  #   cortex-a53: ARMv8.0, no dotprod   -> ref, neon
  #   cortex-a76: ARMv8.2 with dotprod  -> ref, neon, neon-dotprod
  #   max:        dotprod and i8mm      -> ref, neon, neon-dotprod, neon-i8mm
  HEARTH_EXPECT_TABLES=ref,neon run_one cortex-a53 neon $a/arm64_tables_test --gtest_brief=1
  HEARTH_EXPECT_TABLES=ref,neon,neon-dotprod run_one cortex-a76 neon-dotprod $a/arm64_tables_test --gtest_brief=1
  for isa in ref neon neon-dotprod neon-i8mm; do
    HEARTH_EXPECT_TABLES=ref,neon,neon-dotprod,neon-i8mm run_one max $isa $a/arm64_tables_test --gtest_brief=1
  done
  # Every op x type x shape of every table the CPU offers against ref (kernels_table_test runs
  # all of them in one process, whatever HEARTH_ISA says), once per CPU model: cortex-a53 runs
  # neon on a CPU without dotprod (an sdot outside dotprod.cpp would be SIGILL there),
  # cortex-a76 adds neon-dotprod, max all three. The packed-matmul cases do not apply (the neon
  # tables do not repack) and are filtered out, as they would only compute ref's side.
  local filter=${HEARTH_ARM64_FILTER:--KernelOps.PackedMatmul}
  run_one cortex-a53 neon $k/kernels_table_test --gtest_brief=1 --gtest_filter="$filter"
  run_one cortex-a76 neon-dotprod $k/kernels_table_test --gtest_brief=1 --gtest_filter="$filter"
  run_one max neon-i8mm $k/kernels_table_test --gtest_brief=1 --gtest_filter="$filter"
  run_one max neon $k/kernels_quant_test --gtest_brief=1
  run_one max neon $c/core_test --gtest_brief=1
  echo "arm64.sh: all arm64 tests passed under $(qemu)"
}

# A short check: table selection on the three CPU models, and every matmul type, element-wise
# op, exp edge, rope and attention (over a ring, f32/f16/q8_0/q4_0 caches) on all three neon
# tables under -cpu max. The long attention sweeps (KernelOps.Attention, the quantized-cache
# oracle) are left to `test`. No dotprod/i8mm instruction can reach the plain neon table: the
# build's objdump check above guards that without an ARMv8.0 run.
quick() {
  local k=tests/unit/kernels a=tests/arm64
  HEARTH_EXPECT_TABLES=ref,neon run_one cortex-a53 neon $a/arm64_tables_test --gtest_brief=1
  HEARTH_EXPECT_TABLES=ref,neon,neon-dotprod run_one cortex-a76 neon-dotprod $a/arm64_tables_test --gtest_brief=1
  HEARTH_EXPECT_TABLES=ref,neon,neon-dotprod,neon-i8mm run_one max neon-i8mm $a/arm64_tables_test --gtest_brief=1
  run_one max neon-i8mm $k/kernels_table_test --gtest_brief=1 \
    --gtest_filter='KernelOps.*:KvTypes.*:KernelTables.*:TypeTraits.*:-KernelOps.PackedMatmul:KernelOps.Attention:KernelOps.AttentionReads*'
  echo "arm64.sh: quick arm64 check passed under $(qemu)"
}

# Instructions executed by one call of each kernel in tests/arm64/kernel_calls.cpp's suite, per
# table: qemu translates one guest instruction per block (-singlestep) and logs each executed
# block (-d exec,nochain) and each syscall (-d strace); the calls sit between marker syscalls
# close(-1000 - 2i) and close(-1001 - 2i), and the lines between them are counted. Exact
# dynamic instruction counts of the emulated program; no timing.
count() {
  local out=${1:-$BUILD/insn_counts.txt} fifo
  fifo=$(mktemp -u /tmp/hearth-arm64-trace.XXXXXX)
  : >"$out"
  for isa in ref neon neon-dotprod neon-i8mm; do
    mkfifo "$fifo"
    awk '
      /^Trace/ { if (on) n++; next }
      match($0, /close\(-1[0-9][0-9][0-9]\)/) {
        id = substr($0, RSTART + 7, RLENGTH - 8) + 0
        if (id % 2 == 0) { on = 1; n = 0 } else { on = 0; print int((id - 1000) / 2), n }
      }' <"$fifo" >"$fifo.counts" &
    local reader=$!
    HEARTH_ISA=$isa "$(qemu)" -cpu max -singlestep -d exec,nochain,strace -D "$fifo" -L "$QEMU_PREFIX" \
      "$BUILD/tests/arm64/kernel_calls" >"$fifo.names"
    wait "$reader"
    grep -q "^table $isa\$" "$fifo.names" || die "kernel_calls ran another table than $isa"
    # "<isa> <count> <call name>" per call.
    join <(sort "$fifo.counts") <(grep -v '^table ' "$fifo.names" | sort) | sort -n |
      awk -v isa="$isa" '{ c = $2; $1 = ""; $2 = ""; sub(/^  /, ""); print isa "\t" c "\t" $0 }' >>"$out"
    rm -f "$fifo" "$fifo.counts" "$fifo.names"
  done
  cat "$out"
}

case "${1:-all}" in
  setup) setup ;;
  build) build ;;
  test) test_all ;;
  count) count "${2:-}" ;;
  all) setup; build; test_all ;;
  quick) build kernels_table_test arm64_tables_test; quick ;;
  *) die "unknown command '$1' (setup|build|test|count|all|quick)" ;;
esac

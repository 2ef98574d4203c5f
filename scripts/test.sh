#!/usr/bin/env bash
# Runs hearth's whole test suite: the Release build with every CTest label, the unit tests again
# under ASan+UBSan, and a short libFuzzer smoke run. Exits non-zero when any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== setup and build ($(date -u +%T))"
scripts/setup.sh
JOBS=${HEARTH_JOBS:-$(nproc)}
export HEARTH_SHARED=${HEARTH_SHARED:-$(cd .. && pwd)/shared}
status=0

echo "== release: all tests ($(date -u +%T))"
(cd build && ctest --output-on-failure -j "$JOBS" --timeout 900) || status=1

echo "== asan+ubsan: unit tests ($(date -u +%T))"
# -O1 without debug info keeps the sanitizer build quick; only the unit-labelled tests are built.
# HEARTH_WERROR: this build (gcc) also fails on any warning, -Wshadow included.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1" -DHEARTH_SANITIZE=ON \
  -DHEARTH_WERROR=ON >/dev/null
# (test names that are also build targets; other unit tests run programs built by these)
unit_targets=$(comm -12 <(cd build-asan && ctest -N -L unit | sed -n 's/^ *Test *#[0-9]*: \([A-Za-z0-9_]*\)$/\1/p' | sort -u) \
                        <(ninja -C build-asan -t targets all | sed -n 's/^\([A-Za-z0-9_]*\): .*/\1/p' | sort -u))
cmake --build build-asan -j "$JOBS" --target hearth_cli $unit_targets
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --output-on-failure -j "$JOBS" -L unit --timeout 900) || status=1

if [ -f tests/fuzz/CMakeLists.txt ]; then
  echo "== fuzz smoke ($(date -u +%T))"
  CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHEARTH_FUZZ=ON >/dev/null
  cmake --build build-fuzz -j "$JOBS"
  # each fuzzer is one single-threaded process: run JOBS of them at once, 30 s each
  (cd build-fuzz && ctest --output-on-failure -j "$JOBS" -L fuzz-smoke --timeout 900) || status=1
fi

echo "== done ($(date -u +%T))"
if [ $status -ne 0 ]; then echo "test.sh: FAILED"; else echo "test.sh: all suites passed"; fi
exit $status

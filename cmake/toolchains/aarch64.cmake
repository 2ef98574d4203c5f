# Cross build for AArch64 (arm64) with Debian's cross toolchain (g++-12-aarch64-linux-gnu) and
# the arm64 libraries of a multiarch install (dpkg --add-architecture arm64; libfoo-dev:arm64).
# Used by scripts/arm64.sh: cmake -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64.cmake ...
# The default -march of Debian's compiler is plain ARMv8-A; kernels/CMakeLists.txt adds the
# dotprod and i8mm extensions to their own translation units only.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(HEARTH_CROSS_TRIPLE aarch64-linux-gnu)

set(CMAKE_C_COMPILER ${HEARTH_CROSS_TRIPLE}-gcc-12)
set(CMAKE_CXX_COMPILER ${HEARTH_CROSS_TRIPLE}-g++-12)

# Headers and libraries: the multiarch directories (/usr/include/aarch64-linux-gnu,
# /usr/lib/aarch64-linux-gnu) are searched by the cross compiler itself; CMake's find_* look
# under / with the arm64 library architecture, and never run host programs from there.
set(CMAKE_LIBRARY_ARCHITECTURE ${HEARTH_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_FIND_ROOT_PATH / /usr/${HEARTH_CROSS_TRIPLE})
# pkg-config: the arm64 .pc files only.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${HEARTH_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig)

# Run the cross-built tests (CTest, gtest_discover_tests) under user-mode emulation; -L / makes
# the emulator load the multiarch arm64 loader and libraries (libc6:arm64), the same glibc build
# as the libc.so.6 it finds there. /usr/${HEARTH_CROSS_TRIPLE} holds only the cross toolchain's
# loader, whose private structures need not match that libc (scripts/arm64.sh, QEMU_PREFIX).
find_program(HEARTH_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(HEARTH_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${HEARTH_QEMU_AARCH64};-L;/)
endif()

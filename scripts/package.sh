#!/usr/bin/env bash
# Builds hearth's Debian package with dpkg-deb from a built binary and packaging/.
# Usage: scripts/package.sh [--bin FILE] [--arch amd64|arm64] [--version V] [--docs-bin FILE] [--out DIR]
#   --bin       the hearth binary to package (default build/bin/hearth)
#   --arch      the Debian architecture of that binary (default: this machine's)
#   --version   package version (default: the CMake project version)
#   --docs-bin  a hearth binary that runs here, for the man page and completions generated from
#               its --help (default: --bin; for a cross build give the native one, or a qemu wrapper)
#   --out       output directory (default build/packages)
# Depends: is computed by dpkg-shlibdeps from the binary's shared libraries (Debian 12's package
# names); HEARTH_DEB_DEPENDS overrides it (e.g. for a cross build without the target's libraries).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/bin/hearth arch="" version="" docs_bin="" out=$root/build/packages
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --docs-bin) docs_bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "package.sh: unknown argument '$1' (see the usage at the top of the script)" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "package.sh: no executable at $bin (build it first: cmake --build build --target hearth_cli)" >&2; exit 1; }
bin=$(readlink -f "$bin")
arch=${arch:-$(dpkg --print-architecture)}
version=${version:-$(sed -n 's/^project(hearth VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")}
docs_bin=${docs_bin:-$bin}
case "$arch" in amd64|arm64) ;; *) echo "package.sh: --arch must be amd64 or arm64, not '$arch'" >&2; exit 2 ;; esac
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || { echo "package.sh: '$version' is not a Debian version" >&2; exit 2; }
for tool in dpkg-deb help2man gzip; do
  command -v "$tool" >/dev/null || { echo "package.sh: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
pk=$root/packaging
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"

install -D -m 0755 "$bin" "$stage/usr/bin/hearth"
# The generated docs depend only on the docs binary: cached beside the packages by its digest.
docs=$out/.docs-$(sha256sum "$docs_bin" | cut -c1-16)
if [ ! -f "$docs/_hearth" ]; then
  mkdir -p "$out"
  "$pk/gen-docs.sh" "$docs_bin" "$docs.tmp" >/dev/null
  rm -rf "$docs" && mv "$docs.tmp" "$docs"
fi
cp -r "$docs" "$stage/gen"
install -D -m 0644 "$stage/gen/hearth.1" "$stage/usr/share/man/man1/hearth.1"
gzip -9n "$stage/usr/share/man/man1/hearth.1"
install -D -m 0644 "$stage/gen/hearth.bash" "$stage/usr/share/bash-completion/completions/hearth"
install -D -m 0644 "$stage/gen/_hearth" "$stage/usr/share/zsh/vendor-completions/_hearth"
rm -rf "$stage/gen"
for u in "$pk"/systemd/*.service; do install -D -m 0644 "$u" "$stage/lib/systemd/system/$(basename "$u")"; done
for c in "$pk"/etc/*.conf; do install -D -m 0644 "$c" "$stage/etc/hearth/$(basename "$c")"; done
install -D -m 0644 /dev/stdin "$stage/usr/share/doc/hearth/README.Debian" <<'EOF'
hearth for Debian
-----------------
Services (sandboxed; see `systemd-analyze security hearth-serve@default`), none enabled at install:
  hearth-serve@NAME.service   hearth serve with /etc/hearth/NAME.conf (default.conf is an example)
  hearth-agent.service        hearth agent run; enroll first: sudo -u hearth HEARTH_HOME=/var/lib/hearth hearth agent enroll ...
  hearth-controller.service   hearth controller --fleet /var/lib/hearth/fleet
They run as the hearth system user with HEARTH_HOME=/var/lib/hearth. `apt remove` keeps
/var/lib/hearth and /etc/hearth; `apt purge` deletes them. An upgrade keeps both.
EOF

# Depends: from the binary's NEEDED libraries.
depends=${HEARTH_DEB_DEPENDS:-}
if [ -z "$depends" ]; then
  shl=$(mktemp -d)
  mkdir -p "$shl/debian"
  printf 'Source: hearth\n\nPackage: hearth\nArchitecture: any\n' >"$shl/debian/control"
  shlib_bin=$stage/usr/bin/hearth
  if [ "$arch" != "$(dpkg --print-architecture)" ]; then
    # A cross build: this machine has no $arch libraries for dpkg-shlibdeps to look at. Debian
    # names a library's package the same on every architecture, so the native docs binary's
    # Depends serve when both binaries need exactly the same sonames.
    needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort; }
    if [ "$docs_bin" = "$bin" ] || [ "$(needed "$bin")" != "$(needed "$docs_bin")" ]; then
      rm -rf "$shl"
      echo "package.sh: an $arch binary needs HEARTH_DEB_DEPENDS, or --docs-bin with a native binary that needs the same libraries" >&2
      exit 1
    fi
    shlib_bin=$docs_bin
  fi
  depends=$(cd "$shl" && dpkg-shlibdeps -O -e"$shlib_bin" 2>"$shl/err" | sed -n 's/^shlibs:Depends=//p') ||
    true
  [ -n "$depends" ] || { cat "$shl/err" >&2; rm -rf "$shl"; echo "package.sh: dpkg-shlibdeps failed; set HEARTH_DEB_DEPENDS" >&2; exit 1; }
  rm -rf "$shl"
fi

mkdir -p "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed "s/@VERSION@/$version/; s/@ARCH@/$arch/; s/@SIZE@/$size/; s/@DEPENDS@/$depends/" "$pk/debian/control.in" >"$stage/DEBIAN/control"
install -m 0644 "$pk/debian/conffiles" "$stage/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "$pk/debian/$s" "$stage/DEBIAN/$s"; done
(cd "$stage" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"

mkdir -p "$out"
deb=$out/hearth_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zgzip --build "$stage" "$deb" >/dev/null
echo "$deb"

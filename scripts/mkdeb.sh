#!/usr/bin/env bash
# Builds a Debian package from cross-built binaries with dpkg-deb, so that
# `apt install ./framepush_<version>_<arch>.deb` works on Raspberry Pi OS,
# Debian and Ubuntu.
#   scripts/mkdeb.sh ARCH BINDIR VERSION OUTDIR    build dist/framepush_VERSION_ARCH.deb
#   scripts/mkdeb.sh --check FILE.deb              verify a built package's contents
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")

if [ "${1:-}" = "--check" ]; then
  deb=$2
  info=$(dpkg-deb --info "$deb")
  contents=$(dpkg-deb --contents "$deb")
  for f in ./usr/bin/framepush ./usr/bin/framerecv ./lib/systemd/system/framepush.service \
           ./lib/systemd/system/framerecv.service ./etc/framepush/framepush.yaml \
           ./lib/udev/rules.d/60-framepush-gpio.rules ./usr/share/doc/framepush/README.md; do
    grep -q " $f\$" <<<"$contents" || { echo "mkdeb: $deb lacks $f"; exit 1; }
  done
  for field in "Package: framepush" "Architecture:" "Version:" "Depends:"; do
    grep -q "$field" <<<"$info" || { echo "mkdeb: $deb control lacks $field"; exit 1; }
  done
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  dpkg-deb -x "$deb" "$tmp"
  "$tmp/usr/bin/framepush" config check "$tmp/etc/framepush/framepush.yaml" >/dev/null 2>&1 ||
    file "$tmp/usr/bin/framepush" | grep -qv x86-64 # foreign-arch binaries cannot run here
  echo "mkdeb: $deb ok ($(stat -c %s "$deb") bytes)"
  exit 0
fi

arch=$1 bindir=$2 version=$3 out=$4
root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
install -D -m 0755 "$bindir/framepush" "$root/usr/bin/framepush"
install -D -m 0755 "$bindir/framerecv" "$root/usr/bin/framerecv"
install -D -m 0644 "$top/scripts/systemd/framepush.service" "$root/lib/systemd/system/framepush.service"
install -D -m 0644 "$top/scripts/systemd/framerecv.service" "$root/lib/systemd/system/framerecv.service"
install -D -m 0644 "$top/scripts/systemd/60-framepush-gpio.rules" "$root/lib/udev/rules.d/60-framepush-gpio.rules"
install -D -m 0644 "$top/config/example.yaml" "$root/etc/framepush/framepush.yaml"
install -D -m 0644 "$top/README.md" "$root/usr/share/doc/framepush/README.md"
install -D -m 0644 "$top/docs/PROTOCOL.md" "$root/usr/share/doc/framepush/PROTOCOL.md"
mkdir -p "$root/DEBIAN"
size=$(du -ks "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: framepush
Version: $version
Architecture: $arch
Maintainer: framepush developers <framepush@localhost>
Installed-Size: $size
Depends: adduser
Section: video
Priority: optional
Description: camera agent: capture frames and push them over TCP
 framepush captures frames from a V4L2 camera (USB or CSI), a command or a
 test pattern, continuously, on a timer or on a GPIO edge (button, PIR
 sensor), and pushes each one to a receiver with the SIZE / GOT SIZE
 handshake, queueing frames in RAM and on disk while the network is down.
 Includes framerecv, a receiver that stores frames durably.
CONTROL
echo /etc/framepush/framepush.yaml >"$root/DEBIAN/conffiles"
cat >"$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  getent group gpio >/dev/null || addgroup --system gpio
  getent passwd framepush >/dev/null || adduser --system --group --home /var/lib/framepush --no-create-home framepush
  adduser framepush video >/dev/null
  adduser framepush gpio >/dev/null
  if command -v udevadm >/dev/null; then udevadm control --reload >/dev/null 2>&1 || true; udevadm trigger --subsystem-match=gpio >/dev/null 2>&1 || true; fi
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable framepush.service >/dev/null 2>&1 || true
    echo "framepush: edit /etc/framepush/framepush.yaml (check it with: framepush config check /etc/framepush/framepush.yaml),"
    echo "framepush: then start it with: systemctl restart framepush"
  fi
fi
POSTINST
cat >"$root/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  systemctl stop framepush.service framerecv.service >/dev/null 2>&1 || true
  systemctl disable framepush.service framerecv.service >/dev/null 2>&1 || true
fi
PRERM
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm"
mkdir -p "$out"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/framepush_${version}_${arch}.deb" >/dev/null
echo "$out/framepush_${version}_${arch}.deb"

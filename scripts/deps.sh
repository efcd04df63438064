#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian/Ubuntu machine with Go:
# Debian packages (python3 for the seed interop tests, qemu and friends for
# the emulated board, dpkg-dev for the .deb check, chromium for the receiver
# page's browser test, mosquitto for the MQTT tests) and the Go tools pinned in
# scripts/tools.txt, each installed by module version into a version-keyed
# cache (scripts/lib/tools.sh). Idempotent: skips whatever is already there.
# Needs root (or sudo) for apt-get.
set -euo pipefail
. "$(dirname "$0")/lib/tools.sh"

need=()
command -v python3 >/dev/null || need+=(python3)
command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
command -v qemu-arm-static >/dev/null || [ -x /usr/bin/qemu-arm ] || need+=(qemu-user-static)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q static || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v file >/dev/null || need+=(file)
command -v make >/dev/null || need+=(make)
command -v chromium >/dev/null || need+=(chromium)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)

if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

while read -r name pkg ver; do
  case "$ver" in
    v[0-9]*.[0-9]*.[0-9]*) ;;
    *) echo "deps: $name: '$ver' in scripts/tools.txt is not a module version (vX.Y.Z)" >&2; exit 1 ;;
  esac
  if ! tool_check "$name" 2>/dev/null; then
    echo "deps: installing $pkg@$ver into $(tool_dir "$name")"
    rm -rf "$(tool_dir "$name")"
    mkdir -p "$(tool_dir "$name")"
    GOBIN=$(tool_dir "$name") go install "$pkg@$ver"
  fi
  tool_check "$name"
done < <(tool_rows)

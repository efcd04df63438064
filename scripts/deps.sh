#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian/Ubuntu machine with Go:
# Debian packages (python3 for the seed interop tests, qemu and friends for
# the emulated board, dpkg-dev for the .deb check) and Go tools. Idempotent:
# skips whatever is already there. Needs root (or sudo) for apt-get.
set -euo pipefail

STATICCHECK_VERSION=${STATICCHECK_VERSION:-2026.2.2}

need=()
command -v python3 >/dev/null || need+=(python3)
command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
command -v qemu-arm-static >/dev/null || [ -x /usr/bin/qemu-arm ] || need+=(qemu-user-static)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q static || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v file >/dev/null || need+=(file)
command -v make >/dev/null || need+=(make)

if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

GOBIN=$(go env GOPATH)/bin
if ! "$GOBIN/staticcheck" -version 2>/dev/null | grep -q "$STATICCHECK_VERSION"; then
  echo "deps: installing staticcheck $STATICCHECK_VERSION"
  go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

#!/usr/bin/env bash
# The emulated-board test: framepush's cross-compiled agent on a real arm64
# Linux kernel with a real camera driver (vivid) and a real GPIO controller
# (the virt board's PL061), in qemu, on any x86 build machine.
#
#   scripts/vmtest.sh              everything below, in order (make vmtest, CI)
#   scripts/vmtest.sh vm           prepare and run the VM scenarios only
#   scripts/vmtest.sh goarm6 [PKG...]   unit tests of the GOARM=6 build under qemu-arm-static
#   scripts/vmtest.sh prepare      fetch, build and pack, but boot nothing
#   scripts/vmtest.sh shell        boot the same guest with a shell on this terminal
#                                  (the binaries are in /vmtest/bin; Ctrl-A x quits qemu)
#
# Steps: install the host packages it needs (apt-get, skipped when present);
# fetch Debian's arm64 kernel and busybox-static:arm64 through a private APT
# configuration (no dpkg --add-architecture on the host) and cache the parts
# used; build the agent, the guest helper and framerecv; pack an initramfs;
# run the GOARM=6 unit tests under qemu-arm-static; boot the initramfs and
# run the scenarios (scripts/vmtest/driver), ending with a summary. Exits
# non-zero on any failure and keeps the guest's serial log, the agents'
# logs and configs and the received frames in the work folder.
#
# Environment:
#   FRAMEPUSH_CACHE          cache root (default ~/.cache/framepush); downloads go to $FRAMEPUSH_CACHE/vmtest
#   FRAMEPUSH_VM_WORK        work folder, emptied at start (default /tmp/framepush-vmtest)
#   FRAMEPUSH_VM_SCENARIOS   comma list: devices,continuous,gpio,unplug,outage,armv7,probe; auto (default) or all
#   FRAMEPUSH_VM_KERNEL      kernel package to use, e.g. linux-image-6.1.0-56-arm64 (default: the newest)
#   FRAMEPUSH_VM_TIMEOUT     hard limit for the VM part (default 12m)
#   FRAMEPUSH_VM_NO_AGENT=1  leave the agent out of the guest (debug the VM itself while cmd/framepush does not build)
#   FRAMEPUSH_GOARM6_PKGS    packages for the GOARM=6 unit tests (default: every package but cmd/..., whose
#                            tests build host binaries, and internal/e2e, which drives the Python seed server,
#                            whose one-recv flaw turns emulation slowness into cut images)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VMDIR=$ROOT/scripts/vmtest
CACHE=${FRAMEPUSH_CACHE:-${HOME:-/root}/.cache/framepush}/vmtest
WORK=${FRAMEPUSH_VM_WORK:-${TMPDIR:-/tmp}/framepush-vmtest}
BIN=$WORK/bin
# Modules the guest loads, in this order; modprobe resolves their
# dependencies (vivid: rc-core cec mc videodev videobuf2-* v4l2-dv-timings
# v4l2-tpg). gpio_keys stays out: it would claim the PL061 line.
GUEST_MODULES="virtio_pci virtio_net vivid"
GOARM6_PKGS_DEFAULT="./frame/... ./internal/bytesize/... ./wire/... ./capture/... ./queue/... ./sender/... ./receiver/... ./agent/... ./config/... ./internal/backoff/... ./internal/logging/..."
T0=$(date +%s)

say() { printf 'vmtest [%4ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
die() { printf 'vmtest: FAIL: %s\n' "$*" >&2; exit 1; }

# host_packages installs what is missing, with apt-get (root or sudo).
host_packages() {
  local need=()
  command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
  command -v qemu-arm-static >/dev/null || need+=(qemu-user-static)
  command -v cpio >/dev/null || need+=(cpio)
  { command -v depmod && command -v modprobe; } >/dev/null 2>&1 || [ -x /sbin/depmod ] || need+=(kmod)
  command -v dpkg-deb >/dev/null || need+=(dpkg)
  command -v go >/dev/null || die "go is not on PATH"
  [ ${#need[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  say "installing host packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

# private_apt writes an APT configuration that sees the host's own package
# sources, for arm64 only, with its own lists, cache and (empty) status.
private_apt() {
  local d=$1
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/prefs"
  : >"$d/status"
  cat >"$d/apt.conf" <<EOF
Dir::State "$d";
Dir::State::lists "$d/lists";
Dir::State::status "$d/status";
Dir::Cache "$d/cache";
Dir::Etc::preferencesparts "$d/prefs";
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
APT::Sandbox::User "root";
Acquire::Languages "none";
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled "false";
Acquire::IndexTargets::deb::CNF::DefaultEnabled "false";
EOF
}

# fetch_kernel leaves in KDIR: vmlinuz, busybox (arm64, static), modroot/
# (the guest's modules with their modules.dep) and modules.load.
fetch_kernel() {
  local cur
  if [ -z "${FRAMEPUSH_VM_KERNEL:-}" ] && [ -f "$CACHE/kernel/current" ]; then
    cur=$(cat "$CACHE/kernel/current")
    KDIR=$CACHE/kernel/$cur
    if [ -f "$KDIR/ready" ] && [ "$(xargs <"$KDIR/modules.load" 2>/dev/null)" = "$GUEST_MODULES" ]; then
      say "kernel $cur from the cache"
      return 0
    fi
  fi
  local apt=$CACHE/apt tmp
  private_apt "$apt"
  export APT_CONFIG=$apt/apt.conf
  say "apt-get update (arm64 lists, private configuration)"
  apt-get update -qq || die "apt-get update for arm64 failed (APT_CONFIG=$APT_CONFIG)"
  local pkg=${FRAMEPUSH_VM_KERNEL:-}
  if [ -z "$pkg" ]; then
    pkg=$(apt-cache depends linux-image-arm64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    [ -n "$pkg" ] || die "no arm64 kernel package found behind linux-image-arm64"
  fi
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmtest-kernel.XXXXXX")
  say "downloading $pkg and busybox-static:arm64"
  (cd "$tmp" && apt-get download -qq "$pkg" busybox-static) || die "apt-get download $pkg busybox-static failed"
  unset APT_CONFIG
  for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$tmp/root"; done
  local kver
  kver=$(ls "$tmp/root/lib/modules")
  if [ -z "$kver" ] || [ ! -f "$tmp/root/boot/vmlinuz-$kver" ]; then die "$pkg holds no kernel image"; fi
  KDIR=$CACHE/kernel/$kver
  rm -rf "$KDIR"
  mkdir -p "$KDIR/modroot/lib/modules/$kver"
  depmod -b "$tmp/root" "$kver"
  local m line ko
  for m in $GUEST_MODULES; do
    modprobe -d "$tmp/root" -S "$kver" --show-depends "$m" >"$tmp/deps" || die "module $m is not in $pkg"
    while read -r line; do
      case $line in
      insmod\ *)
        ko=${line#insmod }
        ko=${ko%% *}
        mkdir -p "$KDIR/modroot/$(dirname "${ko#"$tmp/root/"}")"
        cp "$ko" "$KDIR/modroot/${ko#"$tmp/root/"}"
        ;;
      esac
    done <"$tmp/deps"
  done
  cp "$tmp/root/lib/modules/$kver/modules.builtin"* "$tmp/root/lib/modules/$kver/modules.order" "$KDIR/modroot/lib/modules/$kver/"
  depmod -b "$KDIR/modroot" "$kver"
  cp "$tmp/root/boot/vmlinuz-$kver" "$KDIR/vmlinuz"
  cp "$tmp/root/bin/busybox" "$KDIR/busybox"
  # shellcheck disable=SC2086 # one module name a line
  printf '%s\n' $GUEST_MODULES >"$KDIR/modules.load"
  echo "$pkg" >"$KDIR/package"
  touch "$KDIR/ready"
  echo "$kver" >"$CACHE/kernel/current"
  rm -rf "$tmp" "$apt"
  say "kernel $kver cached in $KDIR ($(du -sh "$KDIR" | cut -f1))"
}

# build compiles the host tools and the guest binaries into $BIN.
build() {
  mkdir -p "$BIN"
  local version ld
  version=$(cd "$ROOT" && git describe --tags --always --dirty 2>/dev/null || echo dev)
  ld="-s -w -X framepush/internal/version.Version=$version"
  cd "$ROOT"
  export CGO_ENABLED=0
  say "building the driver and framerecv for the host"
  go build -trimpath -o "$BIN/vmdriver" ./scripts/vmtest/driver
  rm -f "$BIN/framerecv"
  if [ -d cmd/framerecv ]; then
    go build -trimpath -ldflags "$ld" -o "$BIN/framerecv" ./cmd/framerecv
  fi
  rm -rf "$BIN/guest" && mkdir -p "$BIN/guest"
  say "building the guest binaries (arm64, armv7)"
  GOOS=linux GOARCH=arm64 go build -trimpath -ldflags "-s -w" -o "$BIN/guest/vmguest" ./scripts/vmtest/guest
  GOOS=linux GOARCH=arm64 go build -trimpath -ldflags "-s -w" -o "$BIN/guest/probe-arm64" ./scripts/vmtest/probe
  GOOS=linux GOARCH=arm GOARM=7 go build -trimpath -ldflags "-s -w" -o "$BIN/guest/probe-armv7" ./scripts/vmtest/probe
  if [ "${FRAMEPUSH_VM_NO_AGENT:-0}" = 1 ]; then
    say "!!! FRAMEPUSH_VM_NO_AGENT=1: the agent is left out of the guest"
  elif [ -d cmd/framepush ]; then
    GOOS=linux GOARCH=arm64 go build -trimpath -ldflags "$ld" -o "$BIN/guest/framepush-arm64" ./cmd/framepush
    GOOS=linux GOARCH=arm GOARM=7 go build -trimpath -ldflags "$ld" -o "$BIN/guest/framepush-armv7" ./cmd/framepush
  else
    say "!!! cmd/framepush does not exist yet: the agent scenarios will be skipped"
  fi
}

# pack builds the initramfs: busybox, the modules, /init and the binaries.
pack() {
  local stage=$WORK/initramfs
  rm -rf "$stage"
  mkdir -p "$stage/bin" "$stage/vmtest/bin" "$stage/lib" "$stage/etc/framepush"
  cp "$KDIR/busybox" "$stage/bin/busybox"
  ln -s busybox "$stage/bin/sh"
  cp -a "$KDIR/modroot/lib/modules" "$stage/lib/"
  install -m 755 "$VMDIR/init" "$stage/init"
  install -m 755 "$VMDIR/run.sh" "$stage/vmtest/run.sh"
  cp "$KDIR/modules.load" "$stage/vmtest/modules.load"
  cp "$BIN/guest/"* "$stage/vmtest/bin/"
  (cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) >"$WORK/initramfs.cpio"
  say "initramfs $(du -h "$WORK/initramfs.cpio" | cut -f1): $(cd "$stage/vmtest/bin" && echo *)"
}

run_vm() {
  local rc=0
  # extra driver flags (-note) come as arguments
  say "booting the VM (serial log: $WORK/run/serial.log)"
  timeout --kill-after=20s "${FRAMEPUSH_VM_TIMEOUT:-12m}" "$BIN/vmdriver" \
    -kernel "$KDIR/vmlinuz" -initrd "$WORK/initramfs.cpio" \
    -framerecv "$([ -x "$BIN/framerecv" ] && echo "$BIN/framerecv")" \
    -work "$WORK/run" -summary "$WORK/summary.txt" \
    -scenarios "${FRAMEPUSH_VM_SCENARIOS:-auto}" "$@" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "vmtest: FAIL: the VM run hit the ${FRAMEPUSH_VM_TIMEOUT:-12m} limit; serial log $WORK/run/serial.log, its tail:"
    tail -n 60 "$WORK/run/serial.log" 2>/dev/null || true
  fi
  return "$rc"
}

# arm_binfmt lets the host kernel run 32-bit ARM programs through
# qemu-arm-static, as installing qemu-user-static does on a systemd machine:
# tests that re-execute their own binary (helper child processes, crash
# tests) need it, since qemu-user cannot exec a foreign binary by itself.
# QEMU_CPU carries the ARM1176 model to those children.
arm_binfmt() {
  local bf=/proc/sys/fs/binfmt_misc conf=/usr/lib/binfmt.d/qemu-arm.conf sudo=""
  [ -e "$bf/qemu-arm" ] && return 0
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  [ -e "$bf/register" ] || $sudo mount -t binfmt_misc binfmt_misc "$bf" 2>/dev/null || true
  if [ -e "$bf/register" ] && [ -f "$conf" ]; then
    grep -v '^#' "$conf" | $sudo tee "$bf/register" >/dev/null 2>&1 || true
  fi
  if [ -e "$bf/qemu-arm" ]; then
    say "goarm6: registered qemu-arm with binfmt_misc (tests that re-exec themselves need it)"
  else
    say "goarm6: !!! could not register qemu-arm with binfmt_misc: tests that re-exec their own binary will fail"
  fi
}

# goarm6 runs unit tests built for ARMv6 (Pi Zero / Pi 1) under
# qemu-arm-static emulating an ARM1176, skipping packages not written yet.
goarm6() {
  cd "$ROOT"
  arm_binfmt
  local want=("$@") pkgs=() p
  [ ${#want[@]} -gt 0 ] || read -r -a want <<<"${FRAMEPUSH_GOARM6_PKGS:-$GOARM6_PKGS_DEFAULT}"
  for p in "${want[@]}"; do
    if [ -d "${p%/...}" ]; then pkgs+=("$p"); else say "goarm6: $p does not exist yet, skipped"; fi
  done
  [ ${#pkgs[@]} -gt 0 ] || { say "goarm6: no package to test"; return 0; }
  say "GOARM=6 unit tests under qemu-arm-static -cpu arm1176: ${pkgs[*]}"
  QEMU_CPU=arm1176 CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=6 go test -count=1 -timeout 8m \
    -exec "qemu-arm-static -cpu arm1176" "${pkgs[@]}"
}

prepare() {
  host_packages
  mkdir -p "$CACHE" "$WORK"
  rm -rf "$WORK/run" "$WORK/summary.txt"
  fetch_kernel
  build
  pack
}

cmd=${1:-all}
[ $# -gt 0 ] && shift
case $cmd in
prepare) prepare ;;
vm)
  prepare
  run_vm
  ;;
goarm6)
  host_packages
  goarm6 "$@"
  ;;
all)
  prepare
  arm_rc=0 vm_rc=0
  goarm6 || arm_rc=$?
  if [ "$arm_rc" -eq 0 ]; then
    note="PASS  5: GOARM=6 unit tests under qemu-arm-static -cpu arm1176"
  else
    note="FAIL  5: GOARM=6 unit tests under qemu-arm-static -cpu arm1176 (exit $arm_rc, output above)"
  fi
  run_vm -note "$note" || vm_rc=$?
  say "done"
  [ "$vm_rc" -eq 0 ] && [ "$arm_rc" -eq 0 ] || exit 1
  ;;
shell)
  prepare
  say "shell on the guest console; Ctrl-A x quits qemu"
  exec qemu-system-aarch64 -M virt -cpu cortex-a53 -accel tcg -smp 2 -m 1024M -nographic -no-reboot \
    -kernel "$KDIR/vmlinuz" -initrd "$WORK/initramfs.cpio" \
    -append "console=ttyAMA0 panic=-1 vmtest_run=shell" \
    -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile=
  ;;
-h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d' ;;
*) die "unknown command $cmd (want all, vm, goarm6, prepare or shell)" ;;
esac

#!/bin/sh
# Installs framepush from an unpacked dist tarball on a board (as root):
#   tar xzf framepush-<version>-linux_armv6.tar.gz && cd framepush-* && sudo ./install.sh
# Options: --no-start (install and enable, do not start), --uninstall.
# Prefer the .deb where apt is available: sudo apt install ./framepush_<v>_<arch>.deb
set -eu
here=$(cd "$(dirname "$0")" && pwd)
start=1
case "${1:-}" in
  --no-start) start=0 ;;
  --uninstall)
    systemctl disable --now framepush.service 2>/dev/null || true
    rm -f /usr/local/bin/framepush /usr/local/bin/framerecv /etc/systemd/system/framepush.service \
          /etc/systemd/system/framerecv.service /etc/udev/rules.d/60-framepush-gpio.rules
    systemctl daemon-reload 2>/dev/null || true
    echo "framepush removed (config in /etc/framepush and spool in /var/lib/framepush kept)"
    exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--no-start|--uninstall]" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (sudo $0)" >&2; exit 1; }

install -m 0755 "$here/framepush" /usr/local/bin/framepush
install -m 0755 "$here/framerecv" /usr/local/bin/framerecv
install -d /etc/framepush
if [ -e /etc/framepush/framepush.yaml ]; then
  echo "keeping existing /etc/framepush/framepush.yaml (new example: $here/framepush.yaml)"
else
  install -m 0644 "$here/framepush.yaml" /etc/framepush/framepush.yaml
fi
getent group gpio >/dev/null || groupadd --system gpio
getent passwd framepush >/dev/null || useradd --system --user-group --home-dir /var/lib/framepush --shell /usr/sbin/nologin framepush
usermod -a -G video,gpio framepush
install -m 0644 "$here/60-framepush-gpio.rules" /etc/udev/rules.d/60-framepush-gpio.rules
udevadm control --reload 2>/dev/null && udevadm trigger --subsystem-match=gpio 2>/dev/null || true
sed 's#/usr/bin/#/usr/local/bin/#' "$here/framepush.service" >/etc/systemd/system/framepush.service
sed 's#/usr/bin/#/usr/local/bin/#' "$here/framerecv.service" >/etc/systemd/system/framerecv.service
systemctl daemon-reload
/usr/local/bin/framepush config check /etc/framepush/framepush.yaml >/dev/null ||
  { echo "install.sh: /etc/framepush/framepush.yaml has errors (see above); fix it, then: systemctl enable --now framepush" >&2; exit 1; }
if [ "$start" = 1 ]; then
  systemctl enable --now framepush.service
  echo "framepush installed and started: journalctl -u framepush -f"
else
  systemctl enable framepush.service
  echo "framepush installed and enabled; start with: systemctl start framepush"
fi

#!/bin/sh
# Install lander-flight @VERSION@ on Raspberry Pi OS (bookworm, 64-bit). Run on the Pi, as root,
# from the bundle's folder:   sudo sh install.sh [--no-boot-config]
#
# It checks the bundle (SHA256SUMS), creates the system user `lander`, makes a plain venv in
# /opt/lander/venv (no system site-packages: only what the bundle holds), installs the flight
# wheel and its dependency wheels offline, puts board.toml and the command key in /etc/lander,
# installs and enables lander-flight.service, and (unless --no-boot-config) adds the UART/I2C
# block to /boot/firmware/config.txt and isolates CPU @CPU@ in cmdline.txt. Re-running it is safe.
# LANDER_DESTDIR (tests only) prefixes every path it writes.
set -eu

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: must run as root (it creates a user, writes /opt, /etc and the boot config):" >&2
    echo "    sudo sh $0 $*" >&2
    exit 1
fi
BOOT_CONFIG=yes
for arg in "$@"; do
    case "$arg" in
        --no-boot-config) BOOT_CONFIG=no ;;
        *) echo "install.sh: unknown option $arg (known: --no-boot-config)" >&2; exit 2 ;;
    esac
done

HERE=$(cd "$(dirname "$0")" && pwd)
D=${LANDER_DESTDIR:-}
PREFIX=$D/opt/lander
ETC=$D/etc/lander
BOOT=$D/boot/firmware
UNIT_DIR=$D/etc/systemd/system
cd "$HERE"

echo "== checking the bundle"
sha256sum --quiet -c SHA256SUMS

echo "== user lander"
if ! id lander >/dev/null 2>&1; then
    useradd --system --user-group --home-dir /var/lib/lander --no-create-home \
            --shell /usr/sbin/nologin lander
fi
for group in dialout i2c; do
    # dialout owns the UARTs, i2c owns /dev/i2c-1 (Raspberry Pi OS creates both)
    if getent group "$group" >/dev/null 2>&1; then usermod -a -G "$group" lander; fi
done

echo "== venv $PREFIX/venv (Python 3.11)"
if ! python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "install.sh: this bundle is for Python 3.11 (Raspberry Pi OS bookworm); python3 is $(python3 -V 2>&1)" >&2
    exit 1
fi
if ! python3 -m venv --help >/dev/null 2>&1; then
    apt-get install -y python3-venv
fi
install -d -m 0755 "$PREFIX"
python3 -m venv --clear "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install --quiet --no-index --find-links "$HERE/wheels" "$HERE"/@WHEEL@
install -m 0644 README.txt "$PREFIX/README.txt"

echo "== configuration $ETC"
install -d -o root -g lander -m 0750 "$ETC"
install -o root -g lander -m 0640 board.toml "$ETC/board.toml"
install -o lander -g lander -m 0600 command.key "$ETC/command.key"

echo "== systemd unit"
install -d -m 0755 "$UNIT_DIR"
install -m 0644 lander-flight.service "$UNIT_DIR/lander-flight.service"
systemctl daemon-reload
systemctl enable lander-flight.service

if [ "$BOOT_CONFIG" = yes ]; then
    echo "== boot configuration $BOOT"
    if ! grep -q "^# lander flight computer" "$BOOT/config.txt" 2>/dev/null; then
        cp -p "$BOOT/config.txt" "$BOOT/config.txt.before-lander" 2>/dev/null || true
        printf '\n' >> "$BOOT/config.txt"
        cat config.txt >> "$BOOT/config.txt"
    fi
    if [ -f "$BOOT/cmdline.txt" ]; then
        cp -p "$BOOT/cmdline.txt" "$BOOT/cmdline.txt.before-lander"
        # the PL011 belongs to the rangefinder: no serial console on it; CPU @CPU@ for the flight
        sed -i -e 's/console=serial0,[0-9]* *//' -e 's/console=ttyAMA0,[0-9]* *//' "$BOOT/cmdline.txt"
        grep -q "isolcpus=" "$BOOT/cmdline.txt" || \
            sed -i -e '1s/$/ isolcpus=@CPU@ nohz_full=@CPU@ rcu_nocbs=@CPU@/' "$BOOT/cmdline.txt"
    fi
    # Bluetooth no longer has a UART (dtoverlay=disable-bt)
    systemctl disable --now hciuart.service >/dev/null 2>&1 || true
    echo "reboot to apply the UART, I2C and CPU isolation settings; lander-flight starts at boot"
else
    systemctl restart lander-flight.service
fi
echo "installed lander-flight @VERSION@"

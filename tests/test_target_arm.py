"""The flight-only aarch64 wheel and the aarch64 CPython 3.11 under qemu-user (issue 12 items 2-4).

TGT-001 the wheel holds flight/ (modules + telemetry dictionary) and an aarch64 flight._altfilter, nothing else
TGT-002 it installs with its pinned dependencies and imports under qemu-aarch64 CPython 3.11; numpy is absent
TGT-003 the C golden vectors through the wheel's cffi kernel under qemu equal the native C run byte for byte
TGT-004 lander-flight runs a short simulated flight under qemu and ends cleanly
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from target_helpers import require

from board import arm

ROOT = Path(__file__).resolve().parents[1]
EM_AARCH64 = 183

pytestmark = pytest.mark.cross


@pytest.fixture(scope="module")
def target() -> arm.TargetPython:
    require(arm.missing_tools(), "the aarch64 flight")
    try:
        return arm.prepare()
    except arm.ArmError as exc:
        require([str(exc)], "the aarch64 sysroot")
        raise


def test_tgt001_wheel_holds_only_flight_and_an_aarch64_kernel(target):
    info = f"lander_flight-{arm.flight_version()}.dist-info"
    with zipfile.ZipFile(target.wheel) as zf:
        names = zf.namelist()
        top = {n.split("/")[0] for n in names}
        assert top == {"flight", info}
        assert "flight/telemetry/dictionary.toml" in names and "flight/app.py" in names
        sos = [n for n in names if n.endswith(".so")]
        assert sos == ["flight/_altfilter.cpython-311-aarch64-linux-gnu.so"]
        elf = zf.read(sos[0])
        assert elf[:4] == b"\x7fELF" and int.from_bytes(elf[18:20], "little") == EM_AARCH64
        assert not [n for n in names if n.endswith(".c") or "__pycache__" in n]
        meta = zf.read(f"{info}/METADATA").decode()
        for dep in ("cffi", "pyserial", "smbus2", "spacepackets"):
            assert f"Requires-Dist: {dep}" in meta
        assert "numpy" not in meta
        assert "Tag: cp311-cp311-linux_aarch64" in zf.read(f"{info}/WHEEL").decode()
        # RECORD: every file with its sha256 and size, as pip checks them
        for line in zf.read(f"{info}/RECORD").decode().splitlines():
            name, digest, size = line.split(",")
            if name.endswith("RECORD"):
                continue
            data = zf.read(name)
            assert digest == "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert int(size) == len(data)


def test_tgt002_installs_and_imports_under_qemu(target):
    code = ("import platform, sys, flight, flight.app, flight.wiring, serial, smbus2, spacepackets\n"
            "from flight._altfilter import lib\n"
            "print(platform.machine(), '%d.%d' % sys.version_info[:2], lib.ALT_NX, flight.__file__)\n"
            "try:\n import numpy\nexcept ImportError:\n print('no numpy')\n")
    out = target.run("-c", code, capture_output=True, text=True, check=True).stdout.split()
    assert out[:3] == ["aarch64", "3.11", "4"]
    assert out[3].startswith(str(target.site))  # the wheel's flight/, not the checkout's
    assert out[4:] == ["no", "numpy"]


def test_tgt003_golden_vectors_through_the_wheel_equal_native_c(target, tmp_path):
    exe = tmp_path / "golden"
    subprocess.run(["gcc", "-std=c99", "-O2", "-ffp-contract=off", str(ROOT / "c_kernels/golden/golden.c"),
                    str(ROOT / "c_kernels/altfilter.c"), "-lm", "-o", str(exe)], check=True)
    native_c = subprocess.run([str(exe)], capture_output=True, check=True).stdout
    native_py = subprocess.run([sys.executable, str(ROOT / "c_kernels/golden/golden.py")],
                               capture_output=True, check=True).stdout
    arm_py = target.run(str(ROOT / "c_kernels/golden/golden.py"), capture_output=True, check=True).stdout
    assert len(native_c.splitlines()) == 5 * 600
    assert native_py == native_c
    assert arm_py == native_c


def test_tgt004_lander_flight_runs_under_qemu(target, tmp_path):
    config = tmp_path / "board.toml"
    config.write_text('[executive]\nclock = "lockstep"\n[devices]\nkind = "simulated"\n'
                      f'[log]\ndir = "{tmp_path / "log"}"\n')
    proc = target.run("-m", "flight.app", "--config", str(config), "--duration", "5", "--auto-start",
                      capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "slots 500" in proc.stdout
    (log,) = (tmp_path / "log").glob("flight-*.log")
    assert log.stat().st_size > 0

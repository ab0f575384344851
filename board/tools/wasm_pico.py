"""A MicroPython board behind a pty, without a Pico: wasm_pico.mjs (the real MicroPython, its
WebAssembly port, under Node) on the master side of a pty; mpremote, pyserial or
`lander flash pico --port` open the slave side, /dev/pts/N, as they would /dev/ttyACM0.

    python -m board.tools.wasm_pico          prints the port, runs until Ctrl-C

Needs Node >= 18 and `npm ci` in board/ (`make board-deps`; .ci/run does it).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tty
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "wasm_pico.mjs"
# board/package.json pins the port for both this and the emulator core's MicroPython checks
PACKAGE = HERE.parent / "node_modules" / "@micropython" / "micropython-webassembly-pyscript" / "micropython.mjs"


def missing() -> list[str]:
    """What this machine lacks to run the board (empty when it can)."""
    need = []
    if shutil.which("node") is None:
        need.append("node (apt-get install nodejs)")
    if not PACKAGE.exists():
        need.append(f"the MicroPython WebAssembly package (cd {HERE.parent} && npm ci, or make board-deps)")
    return need


class WasmPico:
    """One board process; `port` is its serial device. Stop it with close() (by its PID)."""

    def __init__(self, log: Path | None = None, heap_bytes: int = 256 * 1024) -> None:
        master, slave = os.openpty()
        # raw before anything is written: no echo of the board's own output back to it, no CR/LF mapping
        tty.setraw(slave)
        args = ["node", str(SCRIPT), "--heap", str(heap_bytes)] + (["--log", str(log)] if log else [])
        # the board's own errors (Node, the wasm loader) go next to the log, else nowhere
        self.stderr_path = log.with_suffix(".stderr") if log else Path(os.devnull)
        try:
            with open(self.stderr_path, "wb") as stderr:
                self.proc = subprocess.Popen(args, stdin=master, stdout=master, stderr=stderr, cwd=HERE)
        finally:
            os.close(master)  # the board holds it now
        # keep the slave open: between two host connections the master would otherwise see a hang-up
        self._slave = slave
        self.port = os.ttyname(slave)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self._slave >= 0:
            os.close(self._slave)
            self._slave = -1

    def __enter__(self) -> WasmPico:  # noqa: PYI034
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main() -> int:
    need = missing()
    if need:
        print("wasm_pico: missing " + "; ".join(need), file=sys.stderr)
        return 2
    with WasmPico() as board:
        print(f"MicroPython (WebAssembly) on {board.port}; Ctrl-C to stop", flush=True)
        try:
            board.proc.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

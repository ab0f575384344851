// Runs the board/emulator package under real MicroPython (the WebAssembly port) against
// tests/board/vectors.json and prints the scenario output, for tests/test_board_micropython.py.
// It also imports board/pico/main.py against a stand-in `machine` (the safe-mode jumper in, so
// main() returns) and calls its end-of-write IRQ handler with the heap locked.
// usage: node micropython_vectors.mjs MICROPYTHON_MJS EMULATOR_DIR TESTS_BOARD_DIR MAIN_PY
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const [mjs, emulatorDir, testsDir, mainPy] = process.argv.slice(2);
const { loadMicroPython } = await import(mjs);
let out = "";
const mp = await loadMicroPython({ stdout: (s) => { out += s + "\n"; }, stderr: (s) => { process.stderr.write(s + "\n"); } });
mp.FS.mkdirTree("/lib/emulator");
for (const name of readdirSync(emulatorDir).filter((n) => n.endsWith(".py"))) {
  mp.FS.writeFile(`/lib/emulator/${name}`, readFileSync(join(emulatorDir, name)));
}
mp.FS.writeFile("/lib/vector_runner.py", readFileSync(join(testsDir, "vector_runner.py")));
mp.FS.writeFile("/vectors.json", readFileSync(join(testsDir, "vectors.json")));
mp.FS.writeFile("/lib/pico_main.py", readFileSync(mainPy));
mp.FS.writeFile("/lib/machine.py", `
class Pin:
    IN = 0
    PULL_UP = 1
    def __init__(self, *args, **kwargs):
        pass
    def value(self):
        return 0  # the safe-mode jumper is in
class UART:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("safe mode must not open a UART")
class I2CTarget:
    IRQ_END_WRITE = 32
    def __init__(self, *args, **kwargs):
        raise RuntimeError("safe mode must not open an I2C target")
def disable_irq():
    return 1
def enable_irq(state):
    pass
`);
try {
  mp.runPython(`
import sys, json
import emulator.framing, emulator.rangefinder, emulator.icm42688, emulator.lidarlite
import emulator.engine, emulator.stream, emulator.core
import emulator, vector_runner
with open("/vectors.json") as f:
    vectors = json.load(f)
failures = vector_runner.run(vectors, emulator)
print("IMPLEMENTATION " + sys.implementation.name + " " + ".".join(str(x) for x in sys.implementation.version[:3]))
for line in failures:
    print("FAIL " + line)
print("FAILURES %d" % len(failures))
import micropython
import pico_main
pico_main.lidar.mem[0] = 4  # a master wrote ACQ_COMMAND
glue = "not run"  # bound before the heap is locked: a new global would allocate
micropython.heap_lock()
try:
    pico_main.end_of_write(None)
    glue = "ok" if pico_main.lidar.busy else "handler did not act"
except MemoryError:
    glue = "end_of_write allocates"
finally:
    micropython.heap_unlock()
print("GLUE " + glue)
print("SCENARIO-BEGIN")
print(vector_runner.scenario(emulator))
print("SCENARIO-END")
`);
} catch (err) {
  process.stdout.write(out);
  console.error(`PythonError ${err.type}: ${err.message}`);
  process.exit(2);
}
process.stdout.write(out);

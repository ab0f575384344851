// Runs the board/emulator package under real MicroPython (the WebAssembly port) against
// tests/board/vectors.json and prints the scenario output, for tests/test_board_micropython.py.
// usage: node micropython_vectors.mjs MICROPYTHON_MJS EMULATOR_DIR TESTS_BOARD_DIR
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const [mjs, emulatorDir, testsDir] = process.argv.slice(2);
const { loadMicroPython } = await import(mjs);
let out = "";
const mp = await loadMicroPython({ stdout: (s) => { out += s + "\n"; }, stderr: (s) => { process.stderr.write(s + "\n"); } });
mp.FS.mkdirTree("/lib/emulator");
for (const name of readdirSync(emulatorDir).filter((n) => n.endsWith(".py"))) {
  mp.FS.writeFile(`/lib/emulator/${name}`, readFileSync(join(emulatorDir, name)));
}
mp.FS.writeFile("/lib/vector_runner.py", readFileSync(join(testsDir, "vector_runner.py")));
mp.FS.writeFile("/vectors.json", readFileSync(join(testsDir, "vectors.json")));
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

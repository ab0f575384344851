// A MicroPython board on a serial line, for testing `lander flash pico` without a Pico: the
// real MicroPython (the WebAssembly port, v1.27) with its in-memory filesystem, driven byte by
// byte through MicroPython's own event-driven REPL (friendly and raw), on stdin/stdout. The
// Python launcher (wasm_pico.py) puts a pty behind it, so mpremote talks to a /dev/pts/N as it
// would to /dev/ttyACM0.
//
// What a real board does that the port does not, done here:
// - soft reset (Ctrl-D on an empty raw-REPL line, sys.exit(), machine.soft_reset()): prints
//   "MPY: soft reboot", restarts the VM on a fresh heap (files kept), runs boot.py, runs main.py
//   only in the friendly REPL, and comes back in the REPL mode it was in;
// - hard reset (machine.reset()): the same, always back in the friendly REPL, main.py run;
// - a `machine` module with reset(), soft_reset() and unique_id() (the port has none);
// - raw-paste mode (Ctrl-E A Ctrl-A) is declined with "R\x00": the port's raw-paste reader
//   would block waiting for stdin inside WebAssembly; mpremote falls back to the plain raw REPL.
//
// Usage: node wasm_pico.mjs [--log FILE] [--heap BYTES]
// FILE gets one line per event (boot, soft-reset, hard-reset, main.py result) for tests.

import fs from "node:fs";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const args = process.argv.slice(2);
const opt = (name, fallback) => {
    const i = args.indexOf(name);
    return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const logPath = opt("--log", null);
const heapBytes = parseInt(opt("--heap", String(256 * 1024)), 10); // a Pico has ~200 kB free
const PYSTACK = 2048;

const log = (line) => {
    if (logPath) fs.appendFileSync(logPath, line + "\n");
};

let out = []; // bytes from MicroPython, flushed after each input chunk
let muted = false; // output of the boot steps a host could not see (USB re-enumerating)
const write = (bytes) => {
    if (bytes.length) fs.writeSync(1, Buffer.from(bytes));
};
const flush = () => {
    write(out);
    out = [];
};

const mp = await loadMicroPython({
    heapsize: heapBytes,
    pystack: PYSTACK,
    linebuffer: false,
    stdout: (data) => {
        if (!muted) for (const b of data) out.push(b);
    },
    stderr: (data) => {
        if (!muted) for (const b of data) out.push(b);
    },
});
const M = mp._module;

let resetRequest = null; // "hard" when machine.reset() ran
let rawMode = false; // which REPL the board is in (as the VM's pyexec sees it)

const MACHINE = `
import sys, _board
class machine:
    @staticmethod
    def reset():
        _board.request_reset("hard")
        raise SystemExit
    @staticmethod
    def soft_reset():
        raise SystemExit
    @staticmethod
    def unique_id():
        return b"wasmpico"
sys.modules["machine"] = machine
del machine, sys
`;

function installBoardModules() {
    mp.registerJsModule("_board", {
        request_reset: (kind) => {
            resetRequest = kind;
        },
    });
    mp.runPython(MACHINE);
}

function runFileIfExists(path) {
    let source;
    try {
        source = M.FS.readFile(path, { encoding: "utf8" });
    } catch {
        return null; // no such file
    }
    try {
        mp.runPython(source);
        return "ok";
    } catch (err) {
        if (err.name !== "PythonError") throw err;
        if (err.type === "SystemExit") return "ok";
        const text = `Traceback (most recent call last):\r\n${err.message.replace(/\n/g, "\r\n")}`;
        if (!muted) for (const b of Buffer.from(text)) out.push(b);
        return `error ${err.type}`;
    }
}

// A fresh VM on a fresh heap, as a reset gives; the Emscripten filesystem (the board's flash) stays.
function restartVm() {
    M.ccall("mp_js_init", "null", ["number", "number"], [PYSTACK, heapBytes]);
    M.ccall("proxy_c_init", "null", [], []);
    installBoardModules();
}

function boot(kind) {
    // "MPY: soft reboot" is printed by the board before it restarts, in either REPL mode
    if (kind === "soft") {
        for (const b of Buffer.from("MPY: soft reboot\r\n")) out.push(b);
    }
    restartVm();
    if (kind === "hard") {
        // after a hard reset the board is in the friendly REPL, whatever it was in before
        muted = true;
        mp.replInit();
        if (rawMode) mp.replProcessChar(0x02);
        rawMode = false;
        muted = kind === "hard"; // a host reconnects after USB comes back: boot output is lost
    }
    const bootResult = runFileIfExists("/boot.py");
    let mainResult = null;
    if (!rawMode) mainResult = runFileIfExists("/main.py");
    log(`${kind}-reset boot.py=${bootResult ?? "absent"} main.py=${mainResult ?? (rawMode ? "skipped" : "absent")}`);
    muted = false;
    mp.replInit(); // prints the banner, or "raw REPL; CTRL-B to exit\r\n>" in raw mode
}

// Input: one byte at a time into the REPL, except the raw-paste request (declined).
let pending = []; // a possible Ctrl-E 'A' Ctrl-A at the start of a raw-REPL line
let rawLineEmpty = false;

function feed(byte) {
    if (rawMode && rawLineEmpty && (pending.length > 0 || byte === 0x05)) {
        pending.push(byte);
        const want = [0x05, 0x41, 0x01];
        if (pending.every((b, i) => b === want[i])) {
            if (pending.length === 3) {
                out.push(0x52, 0x00); // "R\x00": understood, not supported
                pending = [];
            }
            return;
        }
        const replay = pending;
        pending = [];
        rawLineEmpty = false;
        for (const b of replay) feed(b);
        return;
    }
    if (byte === 0x01) rawMode = true; // Ctrl-A: raw REPL (from either mode)
    else if (byte === 0x02 && rawMode) rawMode = false; // Ctrl-B: back to the friendly REPL
    const ret = mp.replProcessChar(byte);
    if (rawMode) {
        // a raw-REPL line starts empty after Ctrl-A, Ctrl-C, an executed command or a reset
        rawLineEmpty = byte === 0x01 || byte === 0x03 || byte === 0x04;
    }
    if (ret !== 0) {
        // the REPL asked to exit: a soft reset, or a hard one if machine.reset() asked for it
        const kind = resetRequest === "hard" ? "hard" : "soft";
        resetRequest = null;
        boot(kind);
        rawLineEmpty = rawMode;
    }
}

installBoardModules();
log("power-on");
mp.replInit();
flush();

// stdin is a pty's master side (or a pipe): read raw bytes without touching terminal modes
const input = fs.createReadStream(null, { fd: 0, highWaterMark: 4096 });
input.on("data", (chunk) => {
    for (const b of chunk) feed(b);
    flush();
});
input.on("error", (err) => {
    log(`input error ${err.code}`);
    process.exit(0);
});
input.on("end", () => process.exit(0));

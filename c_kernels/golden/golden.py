"""The golden-vector harness of golden.c, driven through the installed cffi kernel
(`flight._altfilter`) instead of linked C: prints the same lines, byte for byte.

    python c_kernels/golden/golden.py > out.txt

Run by the native CPython (x86-64 kernel) and by the aarch64 CPython under qemu-user with the
flight wheel installed, it proves the wheel's kernel is the one golden.c checks (ALT-010), and
that the Python-side arithmetic feeding it (+ - * / on doubles, an integer LCG, no libm) is
itself identical across the two architectures. Standard library + flight._altfilter only.
"""

from __future__ import annotations

import struct
import sys

from flight._altfilter import ffi, lib

STEPS = 600
MASK64 = (1 << 64) - 1


class Lcg:
    """golden.c's generator: uniform in [0, 1) from the top 53 bits, gauss from 12 uniforms."""

    def __init__(self) -> None:
        self.state = 0x9E3779B97F4A7C15

    def uniform(self) -> float:
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & MASK64
        return float(self.state >> 11) / 9007199254740992.0

    def gauss(self) -> float:
        s = 0.0
        for _ in range(12):
            s += self.uniform()
        return s - 6.0


def _bits(x: float) -> str:
    return format(struct.unpack("<Q", struct.pack("<d", x))[0], "016x")


def lines():
    """One line per step per policy, exactly as golden.c's dump() prints them."""
    rng = Lcg()
    nx = lib.ALT_NX
    for policy in range(lib.ALT_POLICY_NONE, lib.ALT_POLICY_TERRAIN_AWARE + 1):
        cfg = ffi.new("alt_config *")
        f = ffi.new("alt_filter *")
        lib.alt_default_config(policy, cfg)
        cfg.px4_reset_s = 1.0
        if lib.alt_init(f, cfg, [9000.0, -45.0, 0.0, 0.0], [40000.0, 1.0, 1.0e-4, 2500.0]) != 0:
            raise SystemExit("alt_init refused the golden configuration")
        h, v, terrain, stuck_range = 9000.0, -45.0, 0.0, 0.0
        for k in range(STEPS):
            dt = 0.01 + 0.001 * rng.uniform()
            accel = 0.5 * rng.gauss()
            h += v * dt + 0.5 * accel * dt * dt
            v += accel * dt
            if k == 150:
                terrain = -4000.0
            if k == 400:
                terrain = 600.0
            force = accel + 1.62 - 300.0 * 300.0 / (1737.4e3 + h) + 0.01 * rng.gauss()
            if k % 5 == 0:
                cos_tilt = 0.98 + 0.02 * rng.uniform()
                true_range = (h - terrain) / cos_tilt
                sigma = 0.3 + 5.0e-4 * true_range
                range_m = true_range + sigma * rng.gauss()
                if k in (90, 300):
                    range_m += 2500.0
                if 500 <= k < 540:
                    range_m = stuck_range
                else:
                    stuck_range = range_m
                if k == 60:
                    range_m = -1.0
                status = lib.alt_step(f, dt, force, 300.0, 1, range_m, cos_tilt, sigma, 0)
            else:
                status = lib.alt_step(f, dt, force, 300.0, 0, 0.0, 1.0, 1.0, 0)
            words = [_bits(f.x[i]) for i in range(nx)] + [_bits(f.P[i]) for i in range(nx * nx)]
            yield f"{policy} {k} {status} " + " ".join(words) + "\n"


def main() -> int:
    out = sys.stdout
    for line in lines():
        out.write(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""ALT-010: the kernel is bit-identical on x86-64, aarch64 and armhf (golden vectors under qemu)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KERNEL = ROOT / "c_kernels"
FLAGS = ["-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror"]
TARGETS = {
    "x86-64": ("gcc", None),
    "aarch64": ("aarch64-linux-gnu-gcc", ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"]),
    "armhf": ("arm-linux-gnueabihf-gcc", ["qemu-arm", "-L", "/usr/arm-linux-gnueabihf"]),
}
# the cross C libraries (Debian's libc6-dev-*-cross): without them a cross compiler reads the host's headers
SYSROOT_HEADERS = {"libc6-dev-arm64-cross": "/usr/aarch64-linux-gnu/include/stdint.h",
                   "libc6-dev-armhf-cross": "/usr/arm-linux-gnueabihf/include/stdint.h"}


def _tools_missing() -> list[str]:
    need = [cc for cc, _ in TARGETS.values()] + [run[0] for _, run in TARGETS.values() if run]
    return [t for t in need if shutil.which(t) is None] + [
        package for package, header in SYSROOT_HEADERS.items() if not Path(header).exists()]


def _golden(target: str, tmp_path: Path) -> bytes:
    cc, runner = TARGETS[target]
    exe = tmp_path / f"golden-{target}"
    subprocess.run([cc, *FLAGS, str(KERNEL / "golden" / "golden.c"), str(KERNEL / "altfilter.c"),
                    "-lm", "-o", str(exe)], check=True)
    return subprocess.run([*(runner or []), str(exe)], check=True, capture_output=True, timeout=120).stdout


@pytest.mark.cross
def test_alt010_golden_vectors_bit_identical_across_architectures(tmp_path):
    missing = _tools_missing()
    if missing:
        if os.environ.get("LANDER_REQUIRE_CROSS") == "1":
            pytest.fail(f"cross toolchain required but missing: {', '.join(missing)}")
        pytest.skip(f"cross toolchain missing: {', '.join(missing)} (CI installs it)")
    outputs = {t: _golden(t, tmp_path) for t in TARGETS}
    reference = outputs["x86-64"]
    lines = reference.decode().splitlines()
    statuses = {int(line.split()[2]) for line in lines}
    assert len(lines) == 5 * 600 and statuses == {0, 1, 2, 3, 4, 5, 6}  # every status exercised
    for target, out in outputs.items():
        assert out == reference, f"{target} differs from x86-64"

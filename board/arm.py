"""The flight on aarch64, built and run on this laptop: the flight-only aarch64 wheel, and an
aarch64 CPython 3.11 under qemu-user to run it.

    python -m board.arm fetch            download Debian's arm64 packages into the cache
    python -m board.arm prepare          sysroot + wheel + target site; print where they are
    python -m board.arm run -- ARGS...   run the aarch64 python3.11 with ARGS (e.g. -m flight.app --help)

The sysroot is Debian 12's own arm64 CPython 3.11 (the Python of Raspberry Pi OS bookworm),
unpacked with `dpkg-deb -x` into a cache folder: no chroot, no root. `qemu-aarch64 -L ROOT`
resolves the guest's absolute paths (/lib/ld-linux-aarch64.so.1, /usr/lib/python3.11) inside
ROOT first. The cffi kernel is cross-compiled from the same sources and flags as the native
build (c_kernels/build.py, -ffp-contract=off), so the aarch64 kernel is bit-identical to x86-64.

The flight's dependencies come from PyPI as aarch64 wheels at the versions installed on this
laptop (the same library code on both sides of a comparison): spacepackets is not packaged by
Debian and needs fastcrc, a compiled (Rust) wheel; the Pi's install script installs the very
same files from the bundle.

Root-only steps (`dpkg --add-architecture arm64 && apt-get update`) are .ci/run's; everything
here runs as any user and says which command is missing when it cannot go on.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = "3.11"
QEMU = "qemu-aarch64"
CROSS_CC = "aarch64-linux-gnu-gcc"
CROSS_LIBC_HEADER = Path("/usr/aarch64-linux-gnu/include/stdint.h")  # libc6-dev-arm64-cross
EXT_SUFFIX = ".cpython-311-aarch64-linux-gnu.so"
WHEEL_TAG = "cp311-cp311-linux_aarch64"
DIST_NAME = "lander-flight"
# Raspberry Pi OS bookworm has glibc 2.36: every manylinux tag up to it (pip does not expand
# a --platform to the older glibc tags itself).
TARGET_PLATFORMS = [f"manylinux_2_{minor}_aarch64" for minor in range(36, 16, -1)] + [
    "manylinux2014_aarch64", "linux_aarch64"]
PIP_TARGET = [*(arg for p in TARGET_PLATFORMS for arg in ("--platform", p)),
              "--python-version", PY, "--implementation", "cp", "--abi", "cp311", "--only-binary=:all:"]

# Debian 12's arm64 CPython 3.11 and the shared libraries its interpreter and stdlib load, plus
# the headers the extension compiles against (libpython3.11-dev). ~17 MB.
ARM64_DEBS = (
    "libc6", "libgcc-s1", "libstdc++6", "python3.11-minimal", "libpython3.11-minimal",
    "libpython3.11-stdlib", "libpython3.11-dev", "libexpat1", "zlib1g", "libffi8", "libssl3",
    "libbz2-1.0", "liblzma5", "libsqlite3-0", "libncursesw6", "libtinfo6", "libreadline8",
    "libuuid1", "libcrypt1", "libtirpc3", "libnsl2", "libdb5.3", "libgssapi-krb5-2", "libkrb5-3",
    "libk5crypto3", "libcom-err2", "libkrb5support0", "libkeyutils1",
)


class ArmError(RuntimeError):
    """The aarch64 toolchain or sysroot is not usable; the message says what to run."""


def cache_dir() -> Path:
    """Where debs, the sysroot, wheels and target sites live (gitignored; LANDER_ARM_CACHE moves it)."""
    return Path(os.environ.get("LANDER_ARM_CACHE") or REPO / ".cache" / "arm64")


def missing_tools() -> list[str]:
    """What this machine lacks to cross-build and run aarch64 code, each with its Debian package."""
    missing = [f"{tool} (apt-get install {pkg})" for tool, pkg in
               ((QEMU, "qemu-user"), (CROSS_CC, "gcc-aarch64-linux-gnu"), ("dpkg-deb", "dpkg"))
               if shutil.which(tool) is None]
    if not CROSS_LIBC_HEADER.exists():
        missing.append(f"{CROSS_LIBC_HEADER} (apt-get install libc6-dev-arm64-cross)")
    return missing


def _fetch_command(names: list[str]) -> str:
    return "apt-get download " + " ".join(f"{n}:arm64" for n in names)


def deb_files(debs: Path) -> dict[str, Path | None]:
    """Each needed package's .deb in `debs`, newest version first, or None."""
    found: dict[str, Path | None] = {}
    for name in ARM64_DEBS:
        candidates = sorted(debs.glob(f"{name}_*_arm64.deb"))
        found[name] = candidates[-1] if candidates else None
    return found


def fetch_debs(debs: Path | None = None) -> list[Path]:
    """Download the arm64 packages not yet in `debs` (apt-get download needs no root once the
    arm64 package lists exist)."""
    debs = debs or cache_dir() / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [n for n, p in deb_files(debs).items() if p is None]
    if missing:
        if shutil.which("apt-get") is None:
            raise ArmError(f"no apt-get: put the arm64 .deb files of {', '.join(missing)} into {debs}")
        proc = subprocess.run(["apt-get", "download", "-q", *[f"{n}:arm64" for n in missing]],
                              cwd=debs, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise ArmError(
                f"cannot download the arm64 packages ({last}).\n"
                f"As root, once: dpkg --add-architecture arm64 && apt-get update\n"
                f"then: cd {debs} && {_fetch_command(missing)}")
    still = [n for n, p in deb_files(debs).items() if p is None]
    if still:
        raise ArmError(f"arm64 packages still missing in {debs}: {', '.join(still)}")
    return [p for p in deb_files(debs).values() if p is not None]


def sysroot(cache: Path | None = None, fetch: bool = True) -> Path:
    """An unpacked Debian 12 arm64 CPython 3.11 (interpreter, stdlib, headers); reused while the
    same .deb files are there."""
    cache = cache or cache_dir()
    debs_dir, root = cache / "debs", cache / "root"
    debs = fetch_debs(debs_dir) if fetch else [p for p in deb_files(debs_dir).values() if p]
    if len(debs) != len(ARM64_DEBS):
        have = {p.name.split("_")[0] for p in debs}
        raise ArmError(f"arm64 packages missing in {debs_dir}: "
                       f"{', '.join(n for n in ARM64_DEBS if n not in have)}")
    stamp = root / ".lander-debs"
    want = "\n".join(sorted(p.name for p in debs))
    if stamp.exists() and stamp.read_text() == want:
        return root
    if shutil.which("dpkg-deb") is None:
        raise ArmError("dpkg-deb is missing (apt-get install dpkg)")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    if not (root / "usr" / "bin" / f"python{PY}").exists():
        raise ArmError(f"{root}: no usr/bin/python{PY} after unpacking the arm64 packages")
    stamp.write_text(want)
    return root


def include_dirs(root: Path) -> list[Path]:
    """Python.h and the arch-specific pyconfig.h of the aarch64 CPython."""
    python_h = root / "usr" / "include" / f"python{PY}"
    if not (python_h / "Python.h").exists():
        raise ArmError(f"{python_h}/Python.h missing: the sysroot lacks libpython{PY}-dev (arm64)")
    # Python.h's pyconfig.h includes <aarch64-linux-gnu/python3.11/pyconfig.h>
    return [python_h, root / "usr" / "include"]


def _kernel_builder():
    spec = importlib.util.spec_from_file_location("_lander_kernel_build", REPO / "c_kernels" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_extension(out_dir: Path, root: Path) -> Path:
    """flight._altfilter for aarch64: cffi's generated C (out-of-line API mode) and the kernel,
    cross-compiled with the native build's own flags (-ffp-contract=off among them)."""
    missing = missing_tools()
    if missing:
        raise ArmError("cannot cross-build the kernel; missing: " + "; ".join(missing))
    build = _kernel_builder()
    module_name, _header, sources = build.FLIGHT_KERNEL
    assert "-ffp-contract=off" in build.COMPILE_ARGS  # bit-identity with x86-64 depends on it
    out_dir.mkdir(parents=True, exist_ok=True)
    generated = out_dir / (module_name.rsplit(".", 1)[1] + ".c")
    with contextlib.redirect_stdout(io.StringIO()):  # cffi prints "generating ..."
        build.ffibuilder.emit_c_code(str(generated))
    so = out_dir / (module_name.rsplit(".", 1)[1] + EXT_SUFFIX)
    kernel = REPO / "c_kernels"
    cmd = [CROSS_CC, *build.COMPILE_ARGS, "-fPIC", "-shared", "-I", str(kernel),
           # -idirafter: the cross libc's own headers come first (ROOT/usr/include holds only Python's)
           *[f"-idirafter{d}" for d in include_dirs(root)],
           str(generated), *[str(kernel / s) for s in sources], "-lm", "-o", str(so)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ArmError(f"cross compile failed:\n{' '.join(cmd)}\n{proc.stderr}")
    return so


def flight_version() -> str:
    text = (REPO / "flight" / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if not match:
        raise ArmError("flight/__init__.py has no __version__")
    return match.group(1)


def flight_requirements() -> list[str]:
    """The flight's dependencies as pyproject.toml declares them (the base dependencies)."""
    with open(REPO / "pyproject.toml", "rb") as fh:
        return list(tomllib.load(fh)["project"]["dependencies"])


def flight_sources() -> list[Path]:
    """What goes into the wheel besides the extension: flight/'s modules and its data (the
    telemetry dictionary). Never a host-built .so nor cffi's generated C."""
    files = []
    for path in sorted((REPO / "flight").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".toml"):
            files.append(path)
    return files


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(out_dir: Path, root: Path | None = None) -> Path:
    """The flight-only aarch64 wheel: flight/ and the cross-built flight._altfilter, nothing of
    ground/, hil/ or board/. Entries sorted, fixed timestamps: the same inputs give the same bytes."""
    root = root or sysroot()
    version = flight_version()
    with_so = build_extension(out_dir / "build", root)
    entries: list[tuple[str, bytes, int]] = []
    for path in flight_sources():
        entries.append((path.relative_to(REPO).as_posix(), path.read_bytes(), 0o644))
    entries.append((f"flight/{with_so.name}", with_so.read_bytes(), 0o755))
    dist_info = f"{DIST_NAME.replace('-', '_')}-{version}.dist-info"
    requires = "".join(f"Requires-Dist: {r}\n" for r in flight_requirements())
    meta = {
        "METADATA": (f"Metadata-Version: 2.1\nName: {DIST_NAME}\nVersion: {version}\n"
                     f"Summary: Lander flight software, flight computer only (aarch64)\n"
                     f"Requires-Python: >={PY}\n{requires}"),
        "WHEEL": f"Wheel-Version: 1.0\nGenerator: board.arm\nRoot-Is-Purelib: false\nTag: {WHEEL_TAG}\n",
        "entry_points.txt": "[console_scripts]\nlander-flight = flight.app:main\n",
        "top_level.txt": "flight\n",
    }
    entries += [(f"{dist_info}/{name}", text.encode(), 0o644) for name, text in meta.items()]
    entries.sort(key=lambda e: e[0])
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data, _ in entries)
    record += f"{dist_info}/RECORD,,\n"
    wheel = out_dir / f"{DIST_NAME.replace('-', '_')}-{version}-{WHEEL_TAG}.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in [*entries, (f"{dist_info}/RECORD", record.encode(), 0o644)]:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return wheel


def dependency_pins() -> list[str]:
    """The flight's dependencies and theirs, pinned to the versions installed here, so the
    aarch64 run uses the same library code as the x86-64 one."""
    pins: dict[str, str] = {}
    todo = [re.match(r"[A-Za-z0-9_.-]+", r).group(0) for r in flight_requirements()]  # type: ignore[union-attr]
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in pins:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ArmError(f"{name} is not installed here; install the project first (pip install -e .)") from None
        pins[key] = dist.version
        for req in dist.requires or []:
            if "extra ==" in req:
                continue
            todo.append(re.match(r"[A-Za-z0-9_.-]+", req).group(0))  # type: ignore[union-attr]
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def download_dependencies(dest: Path | None = None) -> list[Path]:
    """aarch64 / pure wheels of the pinned dependencies, from PyPI (pip's cache keeps them)."""
    dest = dest or cache_dir() / "wheels"
    dest.mkdir(parents=True, exist_ok=True)
    pins = dependency_pins()
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                           *PIP_TARGET, "-d", str(dest), *pins], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ArmError(f"cannot download aarch64 wheels for {' '.join(pins)}:\n{proc.stderr.strip()}")
    wanted = {p.split("==")[0].replace("-", "_") for p in pins}
    return sorted(p for p in dest.glob("*.whl") if p.name.split("-")[0].lower().replace("-", "_") in wanted)


def install_target(wheel: Path, target: Path, wheels: Path | None = None) -> Path:
    """Install the flight wheel and its pinned dependencies (aarch64 wheels) into `target`,
    offline from `wheels`, as `pip install --target` would for the Pi."""
    wheels = wheels or cache_dir() / "wheels"
    download_dependencies(wheels)
    shutil.rmtree(target, ignore_errors=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           "--no-compile", "--no-index", "--find-links", str(wheels), *PIP_TARGET,
                           "--target", str(target), str(wheel), *dependency_pins()],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ArmError(f"cannot install {wheel.name} into {target}:\n{proc.stderr.strip()}")
    return target


@dataclass(frozen=True)
class TargetPython:
    """The aarch64 CPython 3.11 under qemu-user with the flight installed in `site`."""

    root: Path
    site: Path
    wheel: Path | None = None

    @property
    def python(self) -> Path:
        return self.root / "usr" / "bin" / f"python{PY}"

    def argv(self, *args: str) -> list[str]:
        """The command line: `argv("-m", "flight.app", "--config", "board.toml")`.
        -P: the working directory is not put on sys.path (a checkout's flight/ holds the x86-64
        kernel); -s: no user site."""
        return [QEMU, "-L", str(self.root), str(self.python), "-P", "-s", *args]

    def env(self, base: dict[str, str] | None = None, extra_path: tuple[Path, ...] = ()) -> dict[str, str]:
        """The environment for argv(): the host's, less what would steer the guest's Python or
        loader to host (x86-64) files, plus PYTHONPATH = the target site."""
        env = {k: v for k, v in (os.environ if base is None else base).items()
               if not k.startswith("PYTHON") and k not in ("LD_LIBRARY_PATH", "LD_PRELOAD", "QEMU_LD_PREFIX")}
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (self.site, *extra_path))
        env["PYTHONNOUSERSITE"] = "1"
        return env

    def run(self, *args: str, timeout: float | None = 300, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("check", False)
        return subprocess.run(self.argv(*args), env=self.env(), timeout=timeout, **kwargs)  # noqa: PLW1510


def _inputs_key() -> str:
    """Changes whenever what goes into the target changes: flight sources, kernel sources, pins."""
    h = hashlib.sha256()
    for path in [*flight_sources(), *sorted((REPO / "c_kernels").glob("*.[ch]")), REPO / "c_kernels" / "build.py"]:
        h.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    h.update("\n".join(dependency_pins()).encode())
    return h.hexdigest()[:16]


def prepare(cache: Path | None = None) -> TargetPython:
    """Sysroot, wheel and target site, rebuilt only when their inputs changed; what the rig calls
    before it starts the flight process on aarch64."""
    cache = cache or cache_dir()
    missing = missing_tools()
    if missing:
        raise ArmError("the aarch64 flight needs: " + "; ".join(missing))
    root = sysroot(cache)
    key = _inputs_key()
    site, stamp = cache / "site" / key, cache / "site" / key / ".lander-ready"
    wheel_dir = cache / "dist" / key
    wheels = list(wheel_dir.glob("*.whl"))
    if stamp.exists() and wheels:
        return TargetPython(root, site, wheels[0])
    shutil.rmtree(wheel_dir, ignore_errors=True)
    wheel = build_wheel(wheel_dir, root)
    install_target(wheel, site, cache / "wheels")
    stamp.write_text(wheel.name)
    return TargetPython(root, site, wheel)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m board.arm", description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch", help="download the arm64 .deb files into the cache")
    sub.add_parser("prepare", help="sysroot, wheel and target site; print their paths")
    run = sub.add_parser("run", help="run the aarch64 python3.11 with the flight installed")
    run.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "fetch":
            debs = fetch_debs()
            print(f"{len(debs)} arm64 packages in {debs[0].parent}")
            return 0
        target = prepare()
        if args.cmd == "prepare":
            print(f"sysroot {target.root}\nwheel   {target.wheel}\nsite    {target.site}")
            print("run     " + " ".join(target.argv("-m", "flight.app", "--help")))
            return 0
        rest = args.args[1:] if args.args[:1] == ["--"] else args.args
        return target.run(*rest, timeout=None).returncode
    except ArmError as exc:
        print(f"board.arm: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

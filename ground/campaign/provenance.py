"""Which code flew a campaign: a version string for people and a hash of the sources that
decide a run's result, for the machine (a resumed campaign must be the same code)."""

from __future__ import annotations

import hashlib
import subprocess
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# what decides a run's result: the flight software, its kernels, the simulator, the scenarios,
# the campaign's own dispersions and plan, and the SIL runner. The report's look is left out:
# re-styling the report must not stop a campaign from being resumed.
SOURCES = ("flight", "ground", "c_kernels", "hil/sil.py", "hil/campaign.py")
SUFFIXES = {".py", ".c", ".h", ".toml"}
PRESENTATION = {"ground/campaign/report.py", "ground/report.py"}


def source_files(root: Path = ROOT) -> list[Path]:
    files: list[Path] = []
    for entry in SOURCES:
        path = root / entry
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += [p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES
                      and "__pycache__" not in p.parts]
    return sorted(p for p in files if p.relative_to(root).as_posix() not in PRESENTATION)


def source_hash(root: Path = ROOT) -> str:
    """sha256 over (relative path, contents) of every source file, in path order; 16 hex digits."""
    h = hashlib.sha256()
    for p in source_files(root):
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def code_version(root: Path = ROOT) -> str:
    """`git describe` of the tree the code runs from, or the installed package's version."""
    if (root / ".git").exists():
        try:
            out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=root, capture_output=True,
                                 text=True, timeout=10, check=False)
            if out.returncode == 0 and out.stdout.strip():
                return f"git {out.stdout.strip()}"
        except (OSError, subprocess.TimeoutExpired):
            pass
    try:
        return f"lander-fsw {metadata.version('lander-fsw')}"
    except metadata.PackageNotFoundError:
        return "unknown"

"""cffi builder (out-of-line API mode) for the C kernels; run by `pip install` via setup.py.

The cdef is read from the header itself, so the declarations are never copied by hand.
"""
import pathlib
import re

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
COMPILE_ARGS = ["-std=c99", "-O2", "-ffp-contract=off"]


def cdef_from_header(text: str) -> str:
    """Drop comments and preprocessor lines other than integer #defines."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            if re.match(r"#define\s+[A-Z]+_\w+\s+\d+\s*$", stripped):
                lines.append(stripped)
            continue
        lines.append(line)
    return "\n".join(lines)


def builder(module: str, header: str, sources: list[str]) -> FFI:
    ffi = FFI()
    ffi.cdef(cdef_from_header((HERE / header).read_text()))
    ffi.set_source(
        module,
        f'#include "{header}"',
        sources=[str((HERE / s).relative_to(HERE.parent)) for s in sources],
        include_dirs=[str(HERE.relative_to(HERE.parent))],
        extra_compile_args=COMPILE_ARGS,
        libraries=["m"],
    )
    return ffi


# the flight's altitude filter (board/arm.py cross-builds the same module from these for aarch64)
FLIGHT_KERNEL = ("flight._altfilter", "altfilter.h", ["altfilter.c", "profile.c"])
ffibuilder = builder(*FLIGHT_KERNEL)
# the ground simulator's truth kernels (never linked by the flight)
truth_builder = builder("ground._truth", "truth.h", ["truth.c"])

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
    truth_builder.compile(verbose=True)

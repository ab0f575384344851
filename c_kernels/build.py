"""cffi builder (out-of-line API mode) for the C kernels; run by `pip install` via setup.py.

The cdef is read from the header itself, so the declarations are never copied by hand.
"""
import pathlib
import re

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
HEADER = HERE / "altfilter.h"
SOURCES = ["altfilter.c"]
COMPILE_ARGS = ["-std=c99", "-O2", "-ffp-contract=off"]


def cdef_from_header(text: str) -> str:
    """Drop comments and preprocessor lines other than integer #defines."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            if re.match(r"#define\s+ALT_\w+\s+\d+\s*$", stripped):
                lines.append(stripped)
            continue
        lines.append(line)
    return "\n".join(lines)


ffibuilder = FFI()
ffibuilder.cdef(cdef_from_header(HEADER.read_text()))
ffibuilder.set_source(
    "flight._altfilter",
    '#include "altfilter.h"',
    sources=[str((HERE / s).relative_to(HERE.parent)) for s in SOURCES],
    include_dirs=[str(HERE.relative_to(HERE.parent))],
    extra_compile_args=COMPILE_ARGS,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)

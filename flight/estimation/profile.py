"""Python face of the look-ahead terrain profile (c_kernels/profile.c; model in the estimation
README). No numpy: the flight path. The profile's memory is one fixed C struct made at start-up;
observing and looking up allocate nothing in C."""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from flight._altfilter import ffi, lib

CELLS = lib.ALT_PROFILE_CELLS


class ProfileStatus(IntEnum):
    FUSED = lib.ALT_PROFILE_FUSED
    NEW = lib.ALT_PROFILE_NEW
    HELD = lib.ALT_PROFILE_HELD
    REPLACED = lib.ALT_PROFILE_REPLACED
    OUTSIDE = lib.ALT_PROFILE_OUTSIDE
    INVALID = lib.ALT_PROFILE_INVALID


class Source(IntEnum):
    EMPTY = lib.ALT_CELL_EMPTY
    BEAM = lib.ALT_CELL_BEAM
    MAP = lib.ALT_CELL_MAP


class Cell(NamedTuple):
    source: Source
    elevation_m: float
    variance_m2: float
    time_s: float


EMPTY = Cell(Source.EMPTY, 0.0, 0.0, 0.0)


class TerrainProfile:
    def __init__(self, cell_m: float = 100.0, gate_sigma: float = 3.0, replace_after: int = 3,
                 behind: int = 16) -> None:
        self._p = ffi.new("alt_profile *")
        if lib.alt_profile_init(self._p, cell_m, gate_sigma, replace_after, behind) != 0:
            raise ValueError(f"terrain profile: need 1e-3 <= cell_m <= 1e5 (got {cell_m}), 0 < gate_sigma <= 100 "
                             f"({gate_sigma}), 1 <= replace_after <= 100 ({replace_after}), "
                             f"0 <= behind < {CELLS} ({behind})")
        self.cell_m = cell_m
        self._out = ffi.new("double[4]")

    @property
    def length_m(self) -> float:
        return self.cell_m * CELLS

    def index(self, x_m: float) -> int:
        return int(x_m // self.cell_m)

    def move(self, x_m: float) -> bool:
        return lib.alt_profile_move(self._p, x_m) == 0

    def shift(self, dz_m: float) -> bool:
        """The filter's frame moved by dz_m: every cell moves with it (O(1))."""
        return lib.alt_profile_shift(self._p, dz_m) == 0

    def observe(self, x_m: float, elevation_m: float, variance_m2: float, time_s: float,
                source: Source = Source.BEAM, common_m2: float = 0.0) -> ProfileStatus:
        """common_m2: the part of variance_m2 the cell's samples share (see profile.c)."""
        return ProfileStatus(lib.alt_profile_observe(self._p, x_m, elevation_m, variance_m2, common_m2, time_s,
                                                     int(source)))

    def interpolate(self, x_m: float) -> tuple[Source, float, float]:
        """(source, elevation, variance) at x_m, linear between cell centres."""
        out = self._out
        source = lib.alt_profile_interpolate(self._p, x_m, out, out + 1)
        return (Source(source), out[0], out[1]) if source != lib.ALT_CELL_EMPTY else (Source.EMPTY, 0.0, 0.0)

    def next_known(self, x_m: float, direction: int = 1, max_cells: int = CELLS) -> tuple[float, Cell] | None:
        """The nearest cell holding something beyond x_m's own, looking downrange (+1) or back
        (-1) over at most max_cells: (its centre's downrange, the cell), or None."""
        out = self._out
        source = lib.alt_profile_next_known(self._p, x_m, direction, max_cells, out, out + 1, out + 2, out + 3)
        if source == lib.ALT_CELL_EMPTY:
            return None
        return out[0], Cell(Source(source), out[1], out[2], out[3])

    def lookup(self, x_m: float) -> Cell:
        out = self._out
        source = lib.alt_profile_lookup(self._p, x_m, out, out + 1, out + 2)
        if source == lib.ALT_CELL_EMPTY:
            return EMPTY
        return Cell(Source(source), out[0], out[1], out[2])

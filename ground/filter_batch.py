"""Run the C altitude filter over whole input sequences in one call (replays, campaigns).

Inputs must be float64 (valid: bool/uint8), one-dimensional, C-contiguous and of equal
length; anything else is refused with a clear error rather than reinterpreted silently
(a float32 array passed as double[] would otherwise be read as garbage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import numpy as np
from flight._altfilter import ffi, lib

from flight.estimation.altitude_filter import NX, AltitudeFilter


class BatchInputs(TypedDict):
    """One array per filter input, all the same length (see BatchRunner.run)."""

    dt_s: np.ndarray
    force_mps2: np.ndarray
    horizontal_speed_mps: np.ndarray
    range_m: np.ndarray
    cos_tilt: np.ndarray
    sigma_m: np.ndarray
    valid: np.ndarray


_FLOAT_INPUTS = ("dt_s", "force_mps2", "horizontal_speed_mps", "range_m", "cos_tilt", "sigma_m")


@dataclass
class BatchResult:
    state: np.ndarray  # (n, 4): h, v, b, t
    sigma: np.ndarray  # (n, 4): 1-sigma of each state
    hat: np.ndarray  # (n,): height above terrain
    hat_sigma: np.ndarray  # (n,)
    status: np.ndarray  # (n,) int32, flight.estimation.altitude_filter.Status values


def _checked(name: str, a: np.ndarray, dtype: np.dtype, n: int | None) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {a.dtype}")
    if a.ndim != 1 or not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a 1-D C-contiguous array")
    if n is not None and a.shape[0] != n:
        raise ValueError(f"{name}: length {a.shape[0]} differs from dt_s's {n}")
    return a


class BatchRunner:
    """Keeps its output buffers between runs of the same length: make it once, run often."""

    def __init__(self) -> None:
        self._n = -1

    def _buffers(self, n: int) -> None:
        if n == self._n:
            return
        self._n = n
        self._state = np.empty((n, NX))
        self._sigma = np.empty((n, NX))
        self._hat = np.empty(n)
        self._hat_sigma = np.empty(n)
        self._status = np.empty(n, dtype=np.int32)
        self._out = (
            ffi.from_buffer("double[]", self._state),
            ffi.from_buffer("double[]", self._sigma),
            ffi.from_buffer("double[]", self._hat),
            ffi.from_buffer("double[]", self._hat_sigma),
            ffi.from_buffer("int32_t[]", self._status),
        )

    def run(
        self,
        filt: AltitudeFilter,
        dt_s: np.ndarray,
        force_mps2: np.ndarray,
        horizontal_speed_mps: np.ndarray,
        range_m: np.ndarray,
        cos_tilt: np.ndarray,
        sigma_m: np.ndarray,
        valid: np.ndarray,
        sensor_id: int = 0,
        copy: bool = True,
    ) -> BatchResult:
        f64 = np.dtype(np.float64)
        arrays = dict(zip(_FLOAT_INPUTS, (dt_s, force_mps2, horizontal_speed_mps, range_m, cos_tilt, sigma_m)))
        n = _checked("dt_s", dt_s, f64, None).shape[0]
        for name, a in arrays.items():
            _checked(name, a, f64, n)
        if isinstance(valid, np.ndarray) and valid.dtype == np.bool_:
            valid = valid.view(np.uint8)
        _checked("valid", valid, np.dtype(np.uint8), n)
        if not 0 <= sensor_id < lib.ALT_MAX_SENSORS:
            raise ValueError(f"sensor_id must be in 0..{lib.ALT_MAX_SENSORS - 1}")
        self._buffers(n)
        ins = [ffi.from_buffer("double[]", arrays[k]) for k in _FLOAT_INPUTS]
        lib.alt_run_batch(
            filt.handle, n, *ins, ffi.from_buffer("uint8_t[]", valid), sensor_id, *self._out
        )
        take = (lambda a: a.copy()) if copy else (lambda a: a)
        return BatchResult(
            take(self._state), take(self._sigma), take(self._hat), take(self._hat_sigma), take(self._status)
        )


def run_batch(filt: AltitudeFilter, **inputs) -> BatchResult:
    """One-off convenience around BatchRunner (see its run() for the arguments)."""
    return BatchRunner().run(filt, **inputs)

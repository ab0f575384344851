"""The optional onboard terrain map: elevation and its 1-sigma along the ground track, from a
CSV file (downrange_m, elevation_m, sigma_m; the landing-site datum). It primes the look-ahead
profile where the beam has not looked yet; the beam wins where they disagree (M1's route map was
wrong). Stdlib only; read once at start-up.
"""

from __future__ import annotations

import bisect
import csv
import math

HEADER = ("downrange_m", "elevation_m", "sigma_m")


class TerrainMapError(ValueError):
    """A map file that cannot be used; the message names the file and line."""


class TerrainMap:
    def __init__(self, rows: list[tuple[float, float, float]], source: str = "map") -> None:
        if len(rows) < 2:
            raise TerrainMapError(f"{source}: need at least two rows of (downrange_m, elevation_m, sigma_m)")
        for i in range(1, len(rows)):
            if not rows[i][0] > rows[i - 1][0]:
                raise TerrainMapError(f"{source}: downrange must increase (row {i + 2})")
        self.xs = [r[0] for r in rows]
        self.zs = [r[1] for r in rows]
        self.sigmas = [r[2] for r in rows]
        self.source = source

    @classmethod
    def from_csv(cls, path: str) -> TerrainMap:
        rows: list[tuple[float, float, float]] = []
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
                if header is None or tuple(h.strip() for h in header) != HEADER:
                    raise TerrainMapError(f"{path}: line 1 must be {','.join(HEADER)}")
                for line, row in enumerate(reader, start=2):
                    if len(row) != 3:
                        raise TerrainMapError(f"{path}: line {line}: need 3 values, got {len(row)}")
                    try:
                        x, z, sigma = (float(v) for v in row)
                    except ValueError:
                        raise TerrainMapError(f"{path}: line {line}: not a number: {row}") from None
                    if not (math.isfinite(x) and math.isfinite(z) and math.isfinite(sigma) and sigma > 0.0):
                        raise TerrainMapError(f"{path}: line {line}: values must be finite and sigma_m > 0")
                    rows.append((x, z, sigma))
        except OSError as exc:
            raise TerrainMapError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise TerrainMapError(f"{path}: not a text file") from None
        return cls(rows, path)

    def at(self, x_m: float) -> tuple[float, float] | None:
        """(elevation, sigma) at x_m, linear between rows; None outside the map."""
        xs = self.xs
        if not xs[0] <= x_m <= xs[-1]:
            return None
        i = min(bisect.bisect_right(xs, x_m), len(xs) - 1)
        x0, x1 = xs[i - 1], xs[i]
        w = (x_m - x0) / (x1 - x0)
        return self.zs[i - 1] + w * (self.zs[i] - self.zs[i - 1]), max(self.sigmas[i - 1], self.sigmas[i])

"""Campaign statistics: pass rates with Wilson intervals, and which runs were worst. Pure."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


def wilson(passed: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion: sensible at 0 % and 100 %, where the
    normal approximation collapses to a point.

    >>> lo, hi = wilson(100, 100); round(lo, 4), hi
    (0.963, 1.0)
    >>> lo, hi = wilson(0, 20); lo, round(hi, 4)
    (0.0, 0.1611)
    """
    if n <= 0:
        return 0.0, 1.0
    p = passed / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Cell:
    scenario: str
    estimator: str
    runs: int
    landed: int
    crashed: int
    timeout: int
    error: int

    @property
    def rate(self) -> float:
        return self.landed / self.runs if self.runs else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.landed, self.runs)


def cells(rows: Iterable[dict[str, Any]], scenarios: Sequence[str], estimators: Sequence[str]) -> list[list[Cell]]:
    """Pass counts per scenario (rows of the table) x estimator (columns), in the given order."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for r in rows:
        c = counts.setdefault((r["scenario"], r["estimator"]), {})
        c[r["outcome"]] = c.get(r["outcome"], 0) + 1
    table = []
    for s in scenarios:
        line = []
        for e in estimators:
            c = counts.get((s, e), {})
            line.append(Cell(s, e, sum(c.values()), c.get("landed", 0), c.get("crashed", 0), c.get("timeout", 0),
                             c.get("error", 0)))
        table.append(line)
    return table


def badness(row: dict[str, Any]) -> float:
    """How far a run is from a good landing, for picking the worst: an error, then a timeout,
    then the larger touchdown speed as a multiple of its limit (a step-face touchdown counts as
    a crash whatever the speeds)."""
    if row["outcome"] == "error":
        return 1e9
    if row["outcome"] == "timeout" or row.get("touchdown_vertical_speed_mps") is None:
        return 1e6
    crit = row.get("criteria") or {}
    vz = row["touchdown_vertical_speed_mps"] / crit.get("max_vertical_speed_mps", 2.0)
    vh = (row.get("touchdown_horizontal_speed_mps") or 0.0) / crit.get("max_horizontal_speed_mps", 1.0)
    return max(vz, vh) + (1e3 if row.get("touchdown_on_step_face") else 0.0)


def worst_runs(rows: Iterable[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The n worst runs, at most one per (scenario, estimator), so the list spreads over the
    cells instead of showing one failure mode n times. Ties keep the store's order."""
    best_of_cell: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["scenario"], r["estimator"])
        if key not in best_of_cell or badness(r) > badness(best_of_cell[key]):
            best_of_cell[key] = r
    ranked = sorted(best_of_cell.values(), key=badness, reverse=True)
    return ranked[:max(0, n)]

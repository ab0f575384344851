"""Named campaigns. `compare`: every built-in failure family (each built-in scenario) with the
four altitude-trust policies, the same dispersed conditions for each: where M1's logic,
Apollo's gate and a PX4-like reset fail and ours lands."""

from __future__ import annotations

from dataclasses import dataclass

from ground.scenarios import builtin_names

ESTIMATORS = ("terrain-aware", "m1-baseline", "apollo-gate", "px4-like")


@dataclass(frozen=True)
class Preset:
    scenarios: tuple[str, ...]
    estimators: tuple[str, ...]
    runs: int
    description: str


def presets() -> dict[str, Preset]:
    return {
        "compare": Preset(tuple(builtin_names()), ESTIMATORS, 100,
                          "every built-in scenario x terrain-aware, m1-baseline, apollo-gate, px4-like"),
    }

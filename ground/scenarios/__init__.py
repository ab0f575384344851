"""Scenarios: TOML files describing one descent (vehicle, start, terrain, sensors, faults,
pass criteria), checked strictly on load. Built-ins live next to this file."""

from ground.scenarios.schema import Scenario, ScenarioError, builtin_names, load

__all__ = ["Scenario", "ScenarioError", "builtin_names", "load"]

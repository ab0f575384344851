"""Shared by the tests/test_target_*.py files: skip locally, fail in CI, when a tool is missing."""

from __future__ import annotations

import os

import pytest


def require(missing: list[str], what: str) -> None:
    """Skip (locally) or fail (CI sets LANDER_REQUIRE_CROSS=1) when `missing` is not empty."""
    if not missing:
        return
    message = f"{what} needs: {'; '.join(missing)}"
    if os.environ.get("LANDER_REQUIRE_CROSS") == "1":
        pytest.fail(message + " (LANDER_REQUIRE_CROSS=1: .ci/run installs it)")
    pytest.skip(message + " (.ci/run installs it)")

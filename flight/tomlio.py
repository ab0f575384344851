"""Reading a TOML file with every failure turned into the caller's own error type."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


def read_toml(path: str | Path, error: type[Exception], what: str = "file") -> dict[str, Any]:
    """The parsed document, or `error` saying which file and what is wrong with it."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None


def check_table(table: Any, where: str, allowed: set[str], error: type[Exception]) -> dict[str, Any]:
    """`table` if it is a table with known keys only; else `error` naming `where` and the keys."""
    if not isinstance(table, dict):
        raise error(f"{where} must be a table")
    unknown = set(table) - allowed
    if unknown:
        raise error(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(allowed))}")
    return table

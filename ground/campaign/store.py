"""The results store: one SQLite file (stdlib) in the campaign folder, the campaign's only state.

- `campaign`: one row, written once: the configuration (JSON), the code version and a hash of
  the sources that decide a run's result.
- `sessions`: one row per start or resume (when, code version, source hash, command line), so a
  campaign resumed on changed code says so.
- `runs`: one row per (scenario, estimator, run): the run's seed and drawn dispersion values,
  then every field of its summary as a column of its own (tables such as `events` as JSON text).
  Summary fields this file has not seen yet become new columns, so the store follows the
  summary as it grows.

WAL journal and a commit per finished run with synchronous=FULL: a `kill -9` or a power cut
loses at most the runs that were still flying, never a committed one, and never leaves half a
row. Only the process that owns the campaign writes (workers return results to it), so there is
one writer; the primary key refuses a duplicate.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

FILENAME = "campaign.sqlite"
KEY = ("scenario", "estimator", "run")
FIXED = KEY + ("dispersion", "finished_utc")


class StoreError(RuntimeError):
    pass


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _column(name: str) -> str:
    if not name or '"' in name or "\x00" in name:
        raise StoreError(f"not a usable column name: {name!r}")
    return f'"{name}"'


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return int(value)
    return value


def canonical(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


class Store:
    """Open (creating if needed) `DIR/campaign.sqlite`; `existing=True` refuses a folder
    that holds no campaign instead of creating one."""

    def __init__(self, folder: str | Path, existing: bool = False) -> None:
        self.folder = Path(folder)
        self.path = self.folder / FILENAME
        if existing and not self.path.is_file():
            raise StoreError(f"{self.folder}: no campaign here (no {FILENAME})")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None)  # explicit transactions below
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS campaign (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                config TEXT NOT NULL, code_version TEXT NOT NULL, source_hash TEXT NOT NULL,
                created_utc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS sessions (
                started_utc TEXT NOT NULL, code_version TEXT NOT NULL, source_hash TEXT NOT NULL,
                command TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS runs (
                scenario TEXT NOT NULL, estimator TEXT NOT NULL, run INTEGER NOT NULL,
                dispersion TEXT NOT NULL, finished_utc TEXT NOT NULL,
                PRIMARY KEY (scenario, estimator, run));
        """)
        self._columns = self._read_columns()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_columns(self) -> list[str]:
        return [row[1] for row in self.db.execute("PRAGMA table_info(runs)")]

    # -- the campaign, once -------------------------------------------------------------------

    def campaign(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT config, code_version, source_hash, created_utc FROM campaign").fetchone()
        if row is None:
            return None
        return {"config": json.loads(row[0]), "code_version": row[1], "source_hash": row[2], "created_utc": row[3]}

    def begin(self, config: dict[str, Any], code_version: str, source_hash: str, command: str) -> None:
        """Record the campaign (first time only) and this session."""
        with self._transaction():
            if self.campaign() is None:
                self.db.execute("INSERT INTO campaign VALUES (1, ?, ?, ?, ?)",
                                (canonical(config), code_version, source_hash, now_utc()))
            self.db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)", (now_utc(), code_version, source_hash, command))

    def sessions(self) -> list[dict[str, str]]:
        rows = self.db.execute("SELECT started_utc, code_version, source_hash, command FROM sessions ORDER BY rowid")
        return [dict(zip(("started_utc", "code_version", "source_hash", "command"), r)) for r in rows]

    # -- runs ---------------------------------------------------------------------------------

    def done(self) -> set[tuple[str, str, int]]:
        return {(s, e, int(r)) for s, e, r in self.db.execute("SELECT scenario, estimator, run FROM runs")}

    def put(self, scenario: str, estimator: str, run: int, dispersion: dict[str, Any], summary: dict[str, Any]) -> None:
        """Store one finished run, committed before returning."""
        fields = {k: v for k, v in summary.items() if k not in FIXED}
        with self._transaction():
            for name in fields:
                if name not in self._columns:
                    self.db.execute(f"ALTER TABLE runs ADD COLUMN {_column(name)}")
                    self._columns.append(name)
            names = list(FIXED) + list(fields)
            values = [scenario, estimator, run, json.dumps(dispersion, sort_keys=True), now_utc()]
            values += [_cell(v) for v in fields.values()]
            try:
                self.db.execute(f"INSERT INTO runs ({', '.join(map(_column, names))}) "
                                f"VALUES ({', '.join('?' * len(names))})", values)
            except sqlite3.IntegrityError:
                raise StoreError(f"run {scenario} / {estimator} / {run} is already stored") from None

    def rows(self) -> list[dict[str, Any]]:
        """Every run as a dict, dispersion and JSON columns decoded, in key order."""
        cur = self.db.execute("SELECT * FROM runs ORDER BY scenario, estimator, run")
        names = [d[0] for d in cur.description]
        return [_decode(dict(zip(names, row))) for row in cur]

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM runs").fetchone()[0]

    def columns(self) -> list[str]:
        return list(self._columns)

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


JSON_COLUMNS = ("dispersion", "events", "criteria", "navigation_error")


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for name in JSON_COLUMNS:
        if isinstance(row.get(name), str):
            row[name] = json.loads(row[name])
    return row


def export_csv(store: Store, out: Any) -> int:
    """Every run as CSV: the key, the summary columns, then one column per dispersed value
    (`dispersion.PATH`) and per navigation error. Returns the number of rows written."""
    import csv

    rows = store.rows()
    base = [c for c in store.columns() if c not in ("dispersion", "navigation_error")]
    extra: list[str] = []
    for r in rows:
        for group in ("dispersion", "navigation_error"):
            for k in (r.get(group) or {}):
                name = f"{group}.{k}"
                if name not in extra:
                    extra.append(name)
    w = csv.writer(out)
    w.writerow(base + extra)
    for r in rows:
        flat = {f"{g}.{k}": v for g in ("dispersion", "navigation_error") for k, v in (r.get(g) or {}).items()}
        w.writerow([_csv_cell(r.get(c)) for c in base] + [_csv_cell(flat.get(c)) for c in extra])
    return len(rows)


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return v

"""Releases and the production audit log, in the daemon's SQLite file, in tables of their own.

The tables are created if missing and never touch the main schema's version, so
the state store's migrations and these evolve apart. Every production action is
recorded, refused and unconfirmed ones included, and kept.
"""

from __future__ import annotations

import getpass
import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS prod_releases (
    project TEXT NOT NULL,
    number INTEGER NOT NULL,
    created_at REAL NOT NULL,
    state TEXT NOT NULL,
    git_commit TEXT NOT NULL DEFAULT '',
    manifest TEXT NOT NULL DEFAULT '',
    images TEXT NOT NULL DEFAULT '{}',
    detail TEXT NOT NULL DEFAULT '',
    finished_at REAL,
    PRIMARY KEY (project, number)
);
CREATE TABLE IF NOT EXISTS prod_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    project TEXT NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    plan TEXT NOT NULL DEFAULT '',
    seconds REAL NOT NULL DEFAULT 0
);
"""

# A release's life: deploying, then live (healthy) or rolled-back or failed;
# a live release becomes superseded when the next one goes live.
DEPLOYING, LIVE, ROLLED_BACK, SUPERSEDED = "deploying", "live", "rolled-back", "superseded"


@dataclass(frozen=True)
class Release:
    project: str
    number: int
    created_at: float
    state: str
    git_commit: str = ""
    manifest: str = ""
    images: Mapping[str, str] = field(default_factory=dict)
    detail: str = ""
    finished_at: float | None = None

    @property
    def name(self) -> str:
        return f"r{self.number}"

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return {**data, "images": dict(self.images), "release": self.name}


@dataclass(frozen=True)
class AuditEntry:
    at: float
    project: str
    who: str
    action: str
    outcome: str
    detail: str = ""
    plan: str = ""
    seconds: float = 0.0


def operator() -> str:
    """Who acts: the OS user (the dashboard will pass its own user)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class ProductionStore:
    """Releases and audit entries; short transactions, so a deploy never blocks the daemon."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ProductionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- audit ---------------------------------------------------------------------------

    def audit(self, entry: AuditEntry) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO prod_audit (at, project, who, action, outcome, detail, plan, seconds)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.at,
                    entry.project,
                    entry.who,
                    entry.action,
                    entry.outcome,
                    entry.detail,
                    entry.plan,
                    entry.seconds,
                ),
            )

    def audit_log(self, project: str, limit: int = 50) -> list[AuditEntry]:
        rows = self._db.execute(
            "SELECT at, project, who, action, outcome, detail, plan, seconds FROM prod_audit"
            " WHERE project = ? ORDER BY id DESC LIMIT ?",
            (project, limit),
        ).fetchall()
        return [AuditEntry(*row) for row in rows]

    # --- releases ------------------------------------------------------------------------

    def new_release(self, project: str, git_commit: str, manifest: str) -> Release:
        with self._tx() as db:
            (last,) = db.execute(
                "SELECT COALESCE(MAX(number), 0) FROM prod_releases WHERE project = ?", (project,)
            ).fetchone()
            release = Release(project, int(last) + 1, time.time(), DEPLOYING, git_commit, manifest)
            db.execute(
                "INSERT INTO prod_releases (project, number, created_at, state, git_commit,"
                " manifest) VALUES (?, ?, ?, ?, ?, ?)",
                (project, release.number, release.created_at, DEPLOYING, git_commit, manifest),
            )
        return release

    def set_images(self, project: str, number: int, images: Mapping[str, str]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE prod_releases SET images = ? WHERE project = ? AND number = ?",
                (json.dumps(dict(images)), project, number),
            )

    def finish(self, project: str, number: int, state: str, detail: str = "") -> None:
        with self._tx() as db:
            _finish(db, project, number, state, detail)

    def went_back(self, project: str, goal: int, newest: int, detail: str) -> None:
        """A rollback to ``goal`` (0: before the first release) finished: the releases after
        it up to ``newest`` are rolled back and ``goal`` is live, all at once."""
        over = (project, goal, newest, ROLLED_BACK)
        with self._tx() as db:
            db.execute(
                "UPDATE prod_releases SET state = ?, detail = ?, finished_at = ?"
                " WHERE project = ? AND number > ? AND number <= ? AND state != ?",
                (ROLLED_BACK, f"rolled back to r{goal}", time.time(), *over),
            )
            if goal > 0:
                _finish(db, project, goal, LIVE, detail)

    def releases(self, project: str, limit: int = 50) -> list[Release]:
        rows = self._db.execute(
            "SELECT project, number, created_at, state, git_commit, manifest, images, detail,"
            " finished_at FROM prod_releases WHERE project = ? ORDER BY number DESC LIMIT ?",
            (project, limit),
        ).fetchall()
        return [_release(row) for row in rows]

    def live(self, project: str) -> Release | None:
        return next((r for r in self.releases(project) if r.state == LIVE), None)

    def unfinished(self, project: str) -> Release | None:
        return next((r for r in self.releases(project) if r.state == DEPLOYING), None)


def _finish(db: sqlite3.Connection, project: str, number: int, state: str, detail: str) -> None:
    """Release ``number`` ends in ``state``; the one live before it is superseded."""
    if state == LIVE:
        db.execute(
            "UPDATE prod_releases SET state = ? WHERE project = ? AND state = ?",
            (SUPERSEDED, project, LIVE),
        )
    db.execute(
        "UPDATE prod_releases SET state = ?, detail = ?, finished_at = ?"
        " WHERE project = ? AND number = ?",
        (state, detail, time.time(), project, number),
    )


def _release(row: tuple[Any, ...]) -> Release:
    values = list(row)
    values[6] = json.loads(values[6] or "{}")
    return Release(*values)

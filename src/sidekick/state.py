"""The state store: every run, the event log, and the write-back outbox, in SQLite (WAL).

The runtime says what is alive; this store says what was meant and what
happened. A run is recorded before its agent starts and closed after it ends,
so a SIGKILL at any moment leaves a record that the next start-up can finish.
Updates meant for the priority list wait in the outbox until a write-back
lands, so an outcome is never remembered only in memory.

The database carries its schema version in ``PRAGMA user_version``: opening
one written by an older sidekick migrates it forward in one transaction, and
one written by a newer sidekick is refused with a line that says so.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sidekick.errors import StateFileError
from sidekick.models import AgentRun, ProjectStatus, RowUpdate

logger = logging.getLogger(__name__)

ACTIVE_STATES = ("starting", "running", "stopping")

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    key TEXT NOT NULL,
    runner TEXT NOT NULL,
    command TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    exit_code INTEGER,
    reason TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT '',
    log_path TEXT NOT NULL DEFAULT '',
    session_id TEXT NOT NULL DEFAULT '',
    turns INTEGER,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost_usd REAL
);
CREATE INDEX IF NOT EXISTS runs_by_key ON runs (key, state);
CREATE INDEX IF NOT EXISTS runs_by_project ON runs (project, started_at);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    project TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS outbox (
    project TEXT PRIMARY KEY,
    status TEXT,
    agent TEXT,
    last_update TEXT,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS notes (
    project TEXT PRIMARY KEY,
    note TEXT NOT NULL,
    at TEXT NOT NULL
);
"""

# _MIGRATIONS[n] brings a database from schema n to n + 1. Version 0 is a
# database made before the schema carried a version: the same tables as 1.
_MIGRATIONS: tuple[str, ...] = (_SCHEMA_V1,)
SCHEMA_VERSION = len(_MIGRATIONS)

_RUN_COLUMNS = (
    "run_id",
    "project",
    "key",
    "runner",
    "command",
    "state",
    "started_at",
    "ended_at",
    "exit_code",
    "reason",
    "outcome",
    "log_path",
    "session_id",
    "turns",
    "input_tokens",
    "output_tokens",
    "cost_usd",
)
_SELECT_RUNS = """
SELECT run_id, project, key, runner, command, state, started_at, ended_at, exit_code, reason,
       outcome, log_path, session_id, turns, input_tokens, output_tokens, cost_usd
FROM runs
"""


@dataclass(frozen=True)
class RunEnd:
    """How a run ended, with what its result JSON said when there was one."""

    state: str
    ended_at: datetime
    exit_code: int | None = None
    reason: str = ""
    outcome: str = ""
    session_id: str = ""
    turns: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None


@dataclass(frozen=True)
class Event:
    at: datetime
    project: str
    kind: str
    message: str
    data: dict[str, Any]


class StateStore:
    """One SQLite database; safe to share between the daemon's threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StateFileError(str(self.path), f"not a usable state database: {exc}") from None
        except BaseException:
            self._db.close()
            raise

    def _open(self) -> None:
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def _migrate(self) -> None:
        """Bring the schema up to this version's, or refuse one from a newer sidekick."""
        with self._tx() as db:
            (found,) = db.execute("PRAGMA user_version").fetchone()
            if found > SCHEMA_VERSION:
                raise StateFileError(
                    str(self.path),
                    f"written by a newer sidekick (schema {found}; this one reads up to"
                    f" {SCHEMA_VERSION})",
                    "upgrade sidekick, or move the database away to start with an empty history",
                )
            for version in range(found, SCHEMA_VERSION):
                logger.debug("state database %s: schema %d to %d", self.path, version, version + 1)
                _run_script(db, _MIGRATIONS[version])
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return immediate_transaction(self._db, self._lock)

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    # --- runs ----------------------------------------------------------------

    def begin_run(self, run: AgentRun) -> None:
        """Record a run before its agent starts, so a crash right after cannot lose it."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (run_id, project, key, runner, command, state, started_at,"
                " log_path, session_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.run_id,
                    run.project,
                    run.key,
                    run.runner,
                    json.dumps(list(run.command)),
                    run.state,
                    _iso(run.started_at),
                    run.log_path,
                    run.session_id,
                ),
            )

    def set_state(self, run_id: str, state: str, reason: str = "", outcome: str = "") -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET state = ?, reason = CASE WHEN ? = '' THEN reason ELSE ? END,"
                " outcome = CASE WHEN ? = '' THEN outcome ELSE ? END WHERE run_id = ?",
                (state, reason, reason, outcome, outcome, run_id),
            )

    def end_run(self, run_id: str, end: RunEnd) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET state = ?, ended_at = ?, exit_code = ?, reason = ?,"
                " outcome = ?, session_id = CASE WHEN ? = '' THEN session_id ELSE ? END,"
                " turns = ?, input_tokens = ?, output_tokens = ?, cost_usd = ? WHERE run_id = ?",
                (
                    end.state,
                    _iso(end.ended_at),
                    end.exit_code,
                    end.reason,
                    end.outcome,
                    end.session_id,
                    end.session_id,
                    end.turns,
                    end.input_tokens,
                    end.output_tokens,
                    end.cost_usd,
                    run_id,
                ),
            )

    def active_runs(self) -> dict[str, AgentRun]:
        """Runs not yet closed, by agent key (the newest one if a key has several)."""
        rows = self._query(
            _SELECT_RUNS + "WHERE state IN (?, ?, ?) ORDER BY started_at", ACTIVE_STATES
        )
        return {run.key: run for run in map(_run_from_row, rows)}

    def runs(self, project: str | None = None, limit: int = 50) -> list[AgentRun]:
        rows = self._query(
            _SELECT_RUNS + "WHERE (?1 IS NULL OR project = ?1)"
            " ORDER BY started_at DESC, rowid DESC LIMIT ?2",
            [project, limit],
        )
        return [_run_from_row(r) for r in rows]

    def get_run(self, run_id: str) -> AgentRun | None:
        rows = self._query(_SELECT_RUNS + "WHERE run_id = ?", [run_id])
        return _run_from_row(rows[0]) if rows else None

    def last_session_id(self, project: str) -> str:
        rows = self._query(
            "SELECT session_id FROM runs WHERE project = ? AND session_id != ''"
            " ORDER BY started_at DESC LIMIT 1",
            [project],
        )
        return str(rows[0][0]) if rows else ""

    def costs(self) -> dict[str, float]:
        rows = self._query(
            "SELECT project, SUM(cost_usd) FROM runs WHERE cost_usd IS NOT NULL GROUP BY project"
        )
        return {str(p): float(c) for p, c in rows}

    # --- events --------------------------------------------------------------

    def record_event(self, project: str, kind: str, message: str, **data: Any) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (at, project, kind, message, data) VALUES (?, ?, ?, ?, ?)",
                (_iso(_now()), project, kind, message, json.dumps(data, default=str)),
            )

    def events(self, project: str | None = None, limit: int = 50) -> list[Event]:
        rows = self._query(
            "SELECT at, project, kind, message, data FROM events"
            " WHERE (?1 IS NULL OR project = ?1) ORDER BY id DESC LIMIT ?2",
            [project, limit],
        )
        return [Event(_parse_iso(a), p, k, m, json.loads(d)) for a, p, k, m, d in rows]

    # --- notes: why a project is waiting or blocked ---------------------------

    def set_notes(self, notes: dict[str, str]) -> None:
        """Replace the per-project notes (holds, blocks) shown by ``sidekick status``."""
        with self._tx() as db:
            db.execute("DELETE FROM notes")
            db.executemany(
                "INSERT INTO notes (project, note, at) VALUES (?, ?, ?)",
                [(p, n, _iso(_now())) for p, n in notes.items()],
            )

    def notes(self) -> dict[str, str]:
        return {str(p): str(n) for p, n in self._query("SELECT project, note FROM notes")}

    # --- outbox --------------------------------------------------------------

    def queue_update(self, update: RowUpdate) -> None:
        """Keep an update for the list; a newer value for the same cell replaces the older."""
        status = update.status.value if update.status else None
        with self._tx() as db:
            (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox").fetchone()
            db.execute(
                "INSERT INTO outbox (project, status, agent, last_update, seq)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (project) DO UPDATE SET"
                " status = COALESCE(excluded.status, status),"
                " agent = COALESCE(excluded.agent, agent),"
                " last_update = COALESCE(excluded.last_update, last_update),"
                " seq = excluded.seq",
                (update.project, status, update.agent, update.last_update, seq),
            )

    def pending_updates(self) -> tuple[list[RowUpdate], int]:
        """The outbox, and the sequence number to clear up to once written."""
        rows = self._query("SELECT project, status, agent, last_update, seq FROM outbox")
        updates = [RowUpdate(p, ProjectStatus(s) if s else None, a, lu) for p, s, a, lu, _ in rows]
        return updates, max((r[4] for r in rows), default=0)

    def clear_updates(self, projects: Iterable[str], up_to_seq: int) -> None:
        """Drop written updates, unless a newer one for the project came in meanwhile."""
        with self._tx() as db:
            db.executemany(
                "DELETE FROM outbox WHERE project = ? AND seq <= ?",
                [(p, up_to_seq) for p in projects],
            )


@contextmanager
def immediate_transaction(
    db: sqlite3.Connection, lock: threading.RLock
) -> Iterator[sqlite3.Connection]:
    """One writer transaction on a shared connection (other modules on the same file use it)."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Each statement on its own: ``executescript`` would commit the open transaction."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _parse_iso(text: str | None) -> datetime:
    return datetime.fromisoformat(text) if text else _now()


def _run_from_row(row: tuple[Any, ...]) -> AgentRun:
    values = dict(zip(_RUN_COLUMNS, row, strict=True))
    return AgentRun(
        run_id=values["run_id"],
        project=values["project"],
        key=values["key"],
        command=tuple(json.loads(values["command"])),
        started_at=_parse_iso(values["started_at"]),
        state=values["state"],
        ended_at=_parse_iso(values["ended_at"]) if values["ended_at"] else None,
        exit_code=values["exit_code"],
        reason=values["reason"],
        outcome=values["outcome"],
        log_path=values["log_path"],
        session_id=values["session_id"],
        turns=values["turns"],
        input_tokens=values["input_tokens"],
        output_tokens=values["output_tokens"],
        cost_usd=values["cost_usd"],
        runner=values["runner"],
    )

"""Actions asked for on the dashboard, carried out by the daemon.

The dashboard has no Docker socket and no tmux: a confirmed action becomes a
row in ``action_requests`` on the daemon's own SQLite file, the daemon executes
pending rows at the start of a reconcile and answers each one, and both the
request and the answer go to the audit log (the ``events`` table) with the
dashboard user's name. Production actions (restart, deploy, rollback) take
minutes: the daemon marks them running and hands them to a worker thread
(:mod:`sidekick.production.requested`), which answers when done, so no
reconcile waits for them. This module imports nothing heavy, so the daemon can use it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sidekick.models import ProjectStatus, RowUpdate
from sidekick.runners.base import Runner
from sidekick.state import StateStore, immediate_transaction
from sidekick.status import read_report

logger = logging.getLogger(__name__)

STOP = "stop"
REQUEUE = "requeue"
RESTART = "restart"
DEPLOY = "deploy"
ROLLBACK = "rollback"
PRODUCTION = (RESTART, DEPLOY, ROLLBACK)
ACTIONS = (STOP, REQUEUE, *PRODUCTION)
RUNNING = "running"
# What a person is told before confirming, and what each action does (production's
# plans are worked out from its files: sidekick.web.production_plans).
PLANS = {
    STOP: "stop the agent of {project}: its run ends and the row becomes Blocked "
    "(set it to Pending to start again)",
    REQUEUE: "set {project} from Failed to Pending, so the daemon starts a new agent "
    "when capacity allows",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS action_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    user TEXT NOT NULL,
    action TEXT NOT NULL,
    project TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    answer TEXT NOT NULL DEFAULT '',
    answered_at TEXT
)
"""
_SELECT = "SELECT id, at, user, action, project, state, answer, answered_at FROM action_requests "


@dataclass(frozen=True)
class ActionRequest:
    id: int
    at: str
    user: str
    action: str
    project: str
    state: str = "pending"
    answer: str = ""
    answered_at: str | None = None


class ActionRequests:
    """The request table, on the state store's database file."""

    def __init__(self, db_path: Path) -> None:
        # The daemon asks from its scheduler thread and answers from its main thread.
        self._lock = threading.RLock()
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return immediate_transaction(self._db, self._lock)

    def _rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def submit(self, user: str, action: str, project: str) -> int:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO action_requests (at, user, action, project) VALUES (?, ?, ?, ?)",
                (_now(), user, action, project),
            )
        return int(cursor.lastrowid or 0)

    def pending(self) -> list[ActionRequest]:
        return self._select(_SELECT + "WHERE state = 'pending' ORDER BY id")

    def has_pending(self) -> bool:
        return bool(self._rows("SELECT 1 FROM action_requests WHERE state = 'pending' LIMIT 1"))

    def recent(self, project: str | None = None, limit: int = 20) -> list[ActionRequest]:
        return self._select(
            _SELECT + "WHERE (?1 IS NULL OR project = ?1) ORDER BY id DESC LIMIT ?2",
            (project, limit),
        )

    def start(self, request_id: int, answer: str) -> None:
        """Under way in a worker: no longer pending, not yet answered."""
        with self._tx() as db:
            db.execute(
                "UPDATE action_requests SET state = ?, answer = ? WHERE id = ?",
                (RUNNING, answer, request_id),
            )

    def abandon_running(self, why: str) -> int:
        """Answer what a stopped daemon left under way (its worker died with it)."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE action_requests SET state = 'failed', answer = ?, answered_at = ?"
                " WHERE state = ?",
                (why, _now(), RUNNING),
            )
        return cursor.rowcount

    def answer(self, request_id: int, state: str, answer: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE action_requests SET state = ?, answer = ?, answered_at = ? WHERE id = ?",
                (state, answer, _now(), request_id),
            )

    def fingerprint(self) -> tuple[int, int, int]:
        """Changes when a request is made, started or answered (for the live page)."""
        ((newest, answered, running),) = self._rows(
            "SELECT COALESCE(MAX(id), 0), COUNT(answered_at),"
            " COUNT(CASE WHEN state = 'running' THEN 1 END) FROM action_requests"
        )
        return int(newest), int(answered), int(running)

    def run_counts(self) -> list[tuple[str, str, int]]:
        """Runs by state and outcome (for /metrics), on the same database file."""
        rows = self._rows("SELECT state, outcome, COUNT(*) FROM runs GROUP BY 1, 2")
        return [(str(s), str(o), int(n)) for s, o, n in rows]

    def _select(self, sql: str, params: tuple[object, ...] = ()) -> list[ActionRequest]:
        return [ActionRequest(*row) for row in self._rows(sql, params)]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# --- the daemon's side ------------------------------------------------------------


@dataclass(frozen=True)
class Executor:
    """What the daemon lends to carry out a request."""

    store: StateStore
    runner: Runner
    state_dir: Path
    stop_grace: float
    # Starts a production request in a worker thread that answers it; None: not here.
    production: Callable[[ActionRequest], None] | None = None


def execute_pending(requests: ActionRequests, executor: Executor) -> int:
    """Carry out and answer every pending request; how many there were."""
    pending = requests.pending()
    for request in pending:
        if request.action in PRODUCTION and executor.production is not None:
            requests.start(request.id, "under way")
            executor.production(request)
            continue
        try:
            state, answer = _execute(request, executor)
        except Exception as exc:
            logger.exception("dashboard request %d failed", request.id)
            state, answer = "failed", f"{type(exc).__name__}: {exc}"
        answer_request(requests, executor.store, request, state, answer)
    return len(pending)


def answer_request(
    requests: ActionRequests, store: StateStore, request: ActionRequest, state: str, answer: str
) -> None:
    """The answer, on the request and in the audit log with who asked."""
    requests.answer(request.id, state, answer)
    store.record_event(
        request.project,
        f"dashboard-{request.action}",
        f"{answer} (asked by {request.user} on the dashboard)",
        user=request.user,
        request=request.id,
        state=state,
    )


def _execute(request: ActionRequest, executor: Executor) -> tuple[str, str]:
    if request.action == STOP:
        return _stop(request, executor)
    if request.action in PRODUCTION:
        return "refused", "production actions are carried out by the daemon"
    return _requeue(request, executor.store, executor.state_dir)


def _stop(request: ActionRequest, executor: Executor) -> tuple[str, str]:
    store = executor.store
    run = next((r for r in store.active_runs().values() if r.project == request.project), None)
    if run is None:
        return "refused", f"{request.project} has no running agent"
    reason = f"stopped by {request.user} from the dashboard"
    # Blocked, so the next reconcile does not start it again; Pending re-queues it.
    store.set_state(run.run_id, "stopping", reason, ProjectStatus.BLOCKED.value)
    executor.runner.stop(run.key, executor.stop_grace)
    return "done", f"stopped {run.key}"


def _requeue(request: ActionRequest, store: StateStore, state_dir: Path) -> tuple[str, str]:
    report = read_report(state_dir)
    rows = {row.get("project"): row.get("status") for row in report.projects} if report else {}
    if rows.get(request.project) != ProjectStatus.FAILED.value:
        found = rows.get(request.project) or "not in the list"
        return "refused", f"{request.project} is not Failed ({found})"
    if any(r.project == request.project for r in store.active_runs().values()):
        return "refused", f"{request.project} has a running agent"
    note = f"re-queued by {request.user} from the dashboard"
    store.queue_update(RowUpdate(request.project, ProjectStatus.PENDING, "", note))
    return "done", f"{request.project} set to Pending"

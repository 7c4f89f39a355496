"""The daemon's part: what a Complete run means for production, and the opt-in auto deploy.

When a run of a project with a ``production`` block ends Complete, its row's Last
Update says how many files differ from production. With ``deploy.auto:
on_complete`` the project's ``deploy.gate`` command runs in the workspace and, when
it passes, the project deploys, in a thread of its own so no reconcile ever waits
for it; the outcome goes onto the row through the state store's outbox. Each run
gets at most one automatic deploy (recorded in the audit log by its run id).
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sidekick.config import Config
from sidekick.containers.engine import ContainerEngine
from sidekick.production.audit import Action
from sidekick.production.deploy import DEPLOYED, Deployer
from sidekick.production.errors import ProductionError
from sidekick.production.files import plan_files
from sidekick.production.row_note import note_on_row
from sidekick.production.store import ProductionStore
from sidekick.production.target import Target, target
from sidekick.state import StateStore

logger = logging.getLogger(__name__)

GATE_TIMEOUT = 1800.0
WHO = "sidekick daemon"


class AfterRun:
    """Called by the reconciler when a run ends Complete."""

    def __init__(self, config: Config, store: StateStore, clock: Callable[[], datetime]) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.threads: list[threading.Thread] = []

    def note(self, project: str, run_id: str, note: str) -> str:
        """The run's note, with how far production is behind; starts the auto deploy."""
        settings = self.config.production.get(project)
        workspace = self.config.project_directory(project)
        if settings is None or settings.path is None or workspace is None:
            return note
        try:
            plan = plan_files(
                workspace, settings.path, settings.deploy.exclude, delete=settings.deploy.delete
            )
        except OSError as exc:
            logger.warning("%s: cannot compare with production: %s", project, exc)
            return note
        if plan.empty:
            return note
        if settings.deploy.auto == "on_complete":
            self._start(project, run_id)
        return f"{note} · {plan.count} file{'s' if plan.count != 1 else ''} not deployed"

    def _start(self, project: str, run_id: str) -> None:
        thread = threading.Thread(
            target=self._deploy, args=(project, run_id), name=f"auto-deploy {project}", daemon=True
        )
        self.threads.append(thread)
        thread.start()

    def _deploy(self, project: str, run_id: str) -> None:
        try:
            text = self._deploy_once(project, run_id)
        except Exception as exc:  # a thread's failure belongs on the row, not in a traceback
            logger.exception("%s: automatic deploy failed", project)
            text = f"deploy failed: {exc}"
        if text:
            note_on_row(self.store, project, text, self.clock())

    def _deploy_once(self, project: str, run_id: str) -> str:
        chosen = target(self.config, project)
        db = self.config.daemon.state_dir / "sidekick.db"
        with ProductionStore(db) as store:
            what = f"auto-deploy after {run_id}"
            if any(entry.action == what for entry in store.audit_log(project, limit=200)):
                return ""
            action = Action(store, project, what, who=WHO)
            gate = run_gate(chosen)
            if gate:
                action.record("refused", f"gate failed: {gate}")
                return f"not deployed: gate failed ({gate})"
            return self._ship(chosen, store, action)

    def _ship(self, chosen: Target, store: ProductionStore, action: Action) -> str:
        engine = ContainerEngine(self.config.containers)
        try:
            deployer = Deployer(chosen, engine, store, self.config.daemon.state_dir)
            outcome = deployer.deploy(deployer.plan(), action)
        except ProductionError as exc:
            action.record("refused", exc.problem)
            return f"not deployed: {exc.problem}"
        finally:
            engine.close()
        if outcome.code == DEPLOYED:
            return f"deployed {outcome.release}"
        return f"deploy failed, back on {outcome.back_on}: {outcome.why}"


def run_gate(chosen: Target) -> str:
    """Empty when the gate passes; else its exit code and last line."""
    workspace = chosen.workspace or Path.cwd()
    try:
        done = subprocess.run(
            list(chosen.settings.deploy.gate),
            cwd=workspace,
            capture_output=True,
            text=True,
            errors="replace",
            stdin=subprocess.DEVNULL,
            timeout=GATE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode == 0:
        return ""
    lines = (done.stdout + done.stderr).strip().splitlines()
    return f"exit {done.returncode}: {lines[-1] if lines else 'no output'}"

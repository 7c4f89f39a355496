"""Production actions confirmed on the dashboard, carried out by the daemon.

The daemon is the one process with the engine: a restart, deploy or rollback asked
for on the dashboard runs here, each in a worker thread of its own so no reconcile
waits for a build or a health gate. Each is in production's audit log under the
dashboard user's name and is answered on its request row when it ends.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable

from sidekick.config import Config
from sidekick.containers.engine import ContainerEngine
from sidekick.production.audit import Action
from sidekick.production.deploy import DEPLOYED, Deployer
from sidekick.production.errors import DeployLocked, ProductionError
from sidekick.production.restart import HEALTHY, restart
from sidekick.production.row_note import note_on_row
from sidekick.production.store import ProductionStore
from sidekick.production.target import Target, target
from sidekick.state import StateStore
from sidekick.web.action_requests import (
    DEPLOY,
    RESTART,
    ROLLBACK,
    ActionRequest,
    ActionRequests,
    answer_request,
)

logger = logging.getLogger(__name__)

Answer = tuple[str, str]


class ProductionRequests:
    """Starts each production request in a worker thread that answers it."""

    def __init__(self, config: Config, requests: ActionRequests, store: StateStore) -> None:
        self.config = config
        self.requests = requests
        self.store = store
        self.threads: list[threading.Thread] = []

    def start(self, request: ActionRequest) -> None:
        name = f"dashboard-{request.action} {request.project}"
        thread = threading.Thread(target=self._run, args=(request,), name=name, daemon=True)
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()

    def _run(self, request: ActionRequest) -> None:
        try:
            state, answer = self._carry_out(request)
        except ProductionError as exc:
            state, answer = "refused", exc.problem
        except Exception as exc:  # a worker's failure belongs in the answer, not a traceback
            logger.exception("dashboard %s of %s failed", request.action, request.project)
            state, answer = "failed", f"{type(exc).__name__}: {exc}"
        answer_request(self.requests, self.store, request, state, answer)

    def _carry_out(self, request: ActionRequest) -> Answer:
        chosen = target(self.config, request.project)
        engine = ContainerEngine(self.config.containers)
        try:
            with ProductionStore(self.config.daemon.state_dir / "sidekick.db") as store:
                action = Action(
                    store, chosen.name, request.action, who=f"{request.user} (dashboard)"
                )
                return self._handlers[request.action](chosen, engine, store, action)
        finally:
            engine.close()

    @property
    def _handlers(
        self,
    ) -> dict[str, Callable[[Target, ContainerEngine, ProductionStore, Action], Answer]]:
        return {RESTART: _restart, DEPLOY: self._deploy, ROLLBACK: self._rollback}

    def _deployer(
        self, chosen: Target, engine: ContainerEngine, store: ProductionStore
    ) -> Deployer:
        # Compose's progress is no part of the daemon's log; the answer says how it went.
        state_dir = self.config.daemon.state_dir
        return Deployer(chosen, engine, store, state_dir, progress=io.StringIO())

    def _deploy(
        self, chosen: Target, engine: ContainerEngine, store: ProductionStore, action: Action
    ) -> Answer:
        deployer = self._deployer(chosen, engine, store)
        running = any(r.project == chosen.name for r in self.store.active_runs().values())
        why = deployer.refusal(running)
        if why is not None:
            return _refused(action, why)
        try:
            deployer.ensure_free(action.who)
            plan = deployer.plan()
            action.plan = json.dumps(plan.to_dict())
            if plan.files.empty:
                action.record("nothing to deploy")
                return "done", "nothing to deploy"
            outcome = deployer.deploy(plan, action)
        except DeployLocked as exc:
            return _refused(action, exc.problem)
        if outcome.code == DEPLOYED:
            self._note(chosen.name, f"deployed {outcome.release}")
        return ("done" if outcome.code == DEPLOYED else "failed"), outcome.detail

    def _rollback(
        self, chosen: Target, engine: ContainerEngine, store: ProductionStore, action: Action
    ) -> Answer:
        try:
            outcome = self._deployer(chosen, engine, store).rollback(action)
        except DeployLocked as exc:
            return _refused(action, exc.problem)
        if outcome.code == DEPLOYED:
            self._note(chosen.name, f"rolled back to {outcome.release}")
        return ("done" if outcome.code == DEPLOYED else "failed"), outcome.detail

    def _note(self, project: str, text: str) -> None:
        """On the row's Last Update, as the automatic deploy does."""
        note_on_row(self.store, project, text)


def _restart(
    chosen: Target, engine: ContainerEngine, store: ProductionStore, action: Action
) -> Answer:
    # Confirmed on the dashboard already: the plan was shown there.
    outcome = restart(chosen, chosen.engine(engine), action, (), lambda _question: True)
    state = "done" if outcome.code == HEALTHY else "failed"
    return state, f"restarted {', '.join(outcome.containers)}: {outcome.detail}"


def _refused(action: Action, why: str) -> Answer:
    action.record("refused", why)
    return "refused", why

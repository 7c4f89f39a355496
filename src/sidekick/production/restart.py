"""``sidekick prod restart``: show, confirm, restart, then wait for health and smoke checks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sidekick.containers.records import ContainerInfo
from sidekick.containers.scope import ScopedEngine, service_of
from sidekick.production.audit import Action
from sidekick.production.errors import ProductionError
from sidekick.production.health import gate
from sidekick.production.secrets import redactor
from sidekick.production.target import Target

logger = logging.getLogger(__name__)

HEALTHY, UNHEALTHY, REFUSED = 0, 1, 2
NO_TERMINAL = "no terminal to confirm on: pass --yes to restart without asking"


@dataclass(frozen=True)
class RestartOutcome:
    code: int
    detail: str
    containers: tuple[str, ...] = ()


def plan_text(rows: list[ContainerInfo]) -> str:
    return ", ".join(f"{r.name} ({service_of(r)})" for r in rows)


def restart(
    target: Target,
    scoped: ScopedEngine,
    action: Action,
    services: tuple[str, ...],
    confirm: Callable[[str], bool | None],
) -> RestartOutcome:
    rows = target.select(scoped.list(), services)
    if not rows:
        raise ProductionError(
            target.name, f"no containers for {', '.join(services) or 'any service'}"
        )
    action.plan = f"restart {plan_text(rows)}"
    answer = confirm(f"{target.name}: restart {plan_text(rows)}?")
    if answer is None:
        return _refused(action, NO_TERMINAL)
    if not answer:
        return _refused(action, "not confirmed")
    names = tuple(r.name for r in rows)
    for name in names:
        scoped.restart(name)
    services = tuple(sorted({service_of(r) for r in rows}))
    verdict = gate(target, scoped, services, target.settings.deploy.smoke)
    # A probe or a smoke check may print production's .env values, as a deploy's may.
    redact = redactor(target.settings.path)
    action.record("healthy" if verdict.healthy else "unhealthy", redact(verdict.report()))
    return RestartOutcome(HEALTHY if verdict.healthy else UNHEALTHY, redact(verdict.detail), names)


def _refused(action: Action, why: str) -> RestartOutcome:
    action.record("refused", why)
    return RestartOutcome(REFUSED, why)

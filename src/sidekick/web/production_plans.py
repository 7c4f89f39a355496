"""What a production action on the dashboard would do, shown before it is confirmed.

Worked out from files and the production store only: the dashboard has no engine.
A deploy's plan is production's own (:func:`sidekick.production.deploy.deploy_plan`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sidekick.config import Config
from sidekick.production.deploy import deploy_plan, previous_release
from sidekick.production.errors import ProductionError
from sidekick.production.store import ProductionStore
from sidekick.production.target import target
from sidekick.web.action_requests import DEPLOY, RESTART

_NOT_DEPLOYED = re.compile(r"(\d+) files? not deployed")
_DEPLOYED = re.compile(r"\b(deployed|rolled back to) r\d+")


@dataclass(frozen=True)
class Plan:
    """What the person is told, or why the action cannot be asked for."""

    summary: str = ""
    lines: list[str] = field(default_factory=list)
    refused: str = ""


def undeployed(last_update: str) -> int | None:
    """Files not deployed, as the daemon last wrote it on the row (None: not said)."""
    found = _NOT_DEPLOYED.search(last_update)
    if found:
        return int(found.group(1))
    return 0 if _DEPLOYED.search(last_update) else None


def production_plan(config: Config, store: ProductionStore, action: str, project: str) -> Plan:
    try:
        if action == RESTART:
            return _restart(config, project)
        if action == DEPLOY:
            return _deploy(config, project)
        return _rollback(store, project)
    except ProductionError as exc:
        return Plan(refused=exc.problem)
    except OSError as exc:
        return Plan(refused=f"cannot read production's files here: {exc}")


def _restart(config: Config, project: str) -> Plan:
    services = target(config, project).settings.services
    which = ", ".join(services) if services else "every service"
    return Plan(
        f"restart the production containers of {project} ({which}), then wait until they "
        "are healthy and pass the smoke checks"
    )


def _deploy(config: Config, project: str) -> Plan:
    plan = deploy_plan(target(config, project))
    if plan.files.empty:
        return Plan(refused=f"nothing to deploy: production has {project}'s workspace files")
    return Plan(
        f"deploy {plan.files.count} file change(s) of {project} to production behind the "
        "health gate; a failed deploy is rolled back",
        plan.lines(),
    )


def _rollback(store: ProductionStore, project: str) -> Plan:
    releases = store.releases(project, limit=1000)
    current = store.live(project)
    if current is None:
        return Plan(refused=f"{project} has no live release to roll back")
    goal = previous_release(releases, current)
    return Plan(
        f"roll {project} back from {current.name} to r{goal}: its files and images "
        "restored, then health and the smoke checks awaited"
    )

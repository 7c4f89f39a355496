"""Which containers a TARGET means: a container name, or a project's agent and production ones."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sidekick.config import Config
from sidekick.containers import observe
from sidekick.containers.engine import ContainerEngine
from sidekick.containers.labels import LABEL_PROJECT
from sidekick.errors import SidekickError

logger = logging.getLogger(__name__)

COMPOSE_PROJECT_LABEL = "com.docker.compose.project"


@dataclass(eq=False)
class UnknownTarget(SidekickError):
    """A TARGET that is neither a container nor a project with containers."""

    target: str

    def message(self) -> str:
        return (
            f"{self.target!r} is neither a container on this engine nor a project with "
            f"containers (agents labelled {LABEL_PROJECT}, or production containers)"
        )


def resolve_targets(
    engine: ContainerEngine, config: Config, targets: Sequence[str], *, every: bool
) -> list[str]:
    """Container names in a stable order, each once; the engine is listed once for all."""
    known = _Known(engine)
    names: list[str] = []
    if every:
        names += _managed(engine, config, known)
    for target in targets:
        found = _target(engine, config, target, known)
        if not found:
            raise UnknownTarget(target)
        names += found
    return list(dict.fromkeys(names))


class _Known:
    """Every container's name and id, from one list call (not one inspect per name)."""

    def __init__(self, engine: ContainerEngine) -> None:
        rows = observe.container_rows(engine)
        self.names = {observe.row_name(row) for row in rows}
        self.ids = [str(row.get("Id", "")) for row in rows]

    def __contains__(self, name: str) -> bool:
        by_id = len(name) >= 12 and any(i.startswith(name) for i in self.ids)
        return name in self.names or by_id


def _managed(engine: ContainerEngine, config: Config, known: _Known) -> list[str]:
    names = [info.name for info in engine.list()]
    names += [n for n in config.containers.managed_names if n in known]
    for project in config.production:
        names += _production(engine, config, project, known)
    return sorted(set(names))


def _target(engine: ContainerEngine, config: Config, target: str, known: _Known) -> list[str]:
    if target in known:
        return [target]
    agents = [info.name for info in engine.list(project=target)]
    return sorted(agents) + _production(engine, config, target, known)


def _production(engine: ContainerEngine, config: Config, project: str, known: _Known) -> list[str]:
    settings = config.production.get(project)
    if settings is None:
        return []
    names = [n for n in settings.containers if n in known]
    if settings.uses_compose:
        compose = settings.compose_project or (settings.path.name if settings.path else "")
        names += _labelled(engine, f"{COMPOSE_PROJECT_LABEL}={compose}")
    return sorted(set(names))


def _labelled(engine: ContainerEngine, label: str) -> list[str]:
    return [observe.row_name(row) for row in observe.container_rows(engine, label)]

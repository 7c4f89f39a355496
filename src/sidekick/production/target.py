"""One project's production as the commands see it: its settings, Compose project and scope."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple, Protocol

from sidekick.containers.engine import ContainerEngine
from sidekick.containers.records import ContainerInfo
from sidekick.containers.scope import Scope, ScopedEngine, service_of
from sidekick.production.errors import ProductionError
from sidekick.production.settings import ComposeProject, ProductionConfig, compose_project


class Configured(Protocol):
    """The configuration as targets read it: the whole :class:`~sidekick.config.Config`, or
    the :class:`~sidekick.production.view.ProductionView` a look is served."""

    @property
    def production(self) -> Mapping[str, ProductionConfig]: ...

    def project_directory(self, name: str) -> Path | None: ...


class Target(NamedTuple):
    """A configured project's production: where it lives and what may be touched. (A tuple:
    a look defines no dataclass; see sidekick.production.view.)"""

    name: str
    settings: ProductionConfig
    compose: ComposeProject | None
    workspace: Path | None

    @property
    def scope(self) -> Scope:
        projects = frozenset({self.compose.name}) if self.compose else frozenset()
        return Scope(projects, frozenset(self.settings.containers))

    def wanted(self, services: tuple[str, ...] = ()) -> tuple[str, ...]:
        """The services asked for, else the configured ones, else all (empty: no filter)."""
        return services or self.settings.services

    def select(
        self, rows: list[ContainerInfo], services: tuple[str, ...] = ()
    ) -> list[ContainerInfo]:
        wanted = self.wanted(services)
        chosen = [r for r in rows if not wanted or service_of(r) in wanted]
        return sorted(chosen, key=lambda r: (service_of(r), r.name))

    def engine(self, engine: ContainerEngine) -> ScopedEngine:
        return ScopedEngine(engine, self.scope, self.name)


def target(config: Configured, name: str) -> Target:
    settings = config.production.get(name)
    if settings is None:
        raise ProductionError(name, "has no production block in the configuration")
    try:
        compose = compose_project(settings)
    except ValueError as exc:
        raise ProductionError(name, str(exc)) from None
    return Target(name, settings, compose, config.project_directory(name))


def targets(config: Configured, name: str | None = None) -> list[Target]:
    """The one project named, or every project with a production block."""
    if name is not None:
        return [target(config, name)]
    return [target(config, each) for each in sorted(config.production)]

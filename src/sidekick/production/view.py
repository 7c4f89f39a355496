"""What the production commands need of the configuration, and nothing more.

A look (``prod status``, ``prod logs``, ``prod history``) is served this view from
:mod:`sidekick.config_cache`, so it imports the production and engine settings alone,
not every section of config.yaml with what their classes need (see that module for
what this saves).

What a look defines is kept small for the same reason. The view, the production and
engine settings, the container records, the targets and the errors a look can meet are
tuples and plain classes, not dataclasses, so a look neither imports ``dataclasses``
(with the ``inspect``, ``ast`` and ``dis`` it loads) nor compiles each dataclass's
generated methods. Measured on the 2-core CI machine's CPython 3.11: importing
``dataclasses`` 6-8 ms (-X importtime), defining a frozen dataclass 0.4-0.8 ms against
0.2 ms for a NamedTuple; ``prod logs --tail 10000`` of a million-line log went from 96-98
to 86-92 ms (medians of 41 runs, three times each), where ``docker logs`` took 63-68 ms.
tests/test_config_cache.py checks that the logs look stays free of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sidekick.containers.settings import ContainersConfig
from sidekick.production.settings import ProductionConfig, compose_candidates

if TYPE_CHECKING:
    from sidekick.config import Config


class ProductionView(NamedTuple):
    """Each production block by project, each such project's workspace (None: none
    configured), how to reach the engine, and the state directory (the production store).
    (A tuple, as said above.)"""

    production: dict[str, ProductionConfig]
    workspaces: dict[str, Path | None]
    containers: ContainersConfig
    state_dir: Path

    @classmethod
    def of(cls, config: Config) -> ProductionView:
        return cls(
            production=dict(config.production),
            workspaces={name: config.project_directory(name) for name in config.production},
            containers=config.containers,
            state_dir=config.daemon.state_dir,
        )

    def project_directory(self, name: str) -> Path | None:
        return self.workspaces.get(name)

    @staticmethod
    def decided_by(config: Config) -> Iterator[Path]:
        """Paths besides the configured ones whose existence decides the view: each compose
        file name Compose would look for in a production directory, and the directories
        under projects_root that may be a production project's workspace."""
        from sidekick.config import root_candidates

        root = config.projects_root
        for name, settings in config.production.items():
            yield from compose_candidates(settings)
            if name not in config.projects and root is not None:
                yield from root_candidates(root, name)

"""The ``containers:`` section of config.yaml: how the daemon reaches its Docker engine.

Apart from :mod:`sidekick.config` (which names it ``Config.containers``) so that the
engine and a cached production look (:mod:`sidekick.production.view`) need no other section.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class ContainersConfig(NamedTuple):
    """The engine's address (None: the environment's, as the docker CLI reads it), the API
    version, the timeout of a call in seconds, the containers configured by name, the host
    paths an agent container may mount, this daemon's own container, and its instance label.
    (A tuple: a look defines no dataclass; see sidekick.production.view.)"""

    docker_host: str | None = None
    api_version: str = "auto"
    timeout: float = 30.0
    managed_names: tuple[str, ...] = ()
    allowed_paths: tuple[Path, ...] = ()
    own_container: str | None = None
    instance: str = ""

"""A world whose agent profile runs its agents as swarm jobs, and a daemon over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sidekick.config import Config
from sidekick.daemon import Daemon, Parts
from sidekick.priorities.choose import build_source
from sidekick.runners.choose import build_runner
from sidekick.state import StateStore
from tests.containers.test_daemon_container import tick_until, unique
from tests.daemon.world import World, make_world

# A separate process, so a test can SIGKILL the daemon as a crash would.
DAEMON_SCRIPT = """
import sys
from sidekick.config import load_config
from sidekick.daemon import Daemon, Parts
from sidekick.priorities.choose import build_source
from sidekick.runners.choose import build_runner
from sidekick.state import StateStore
config = load_config(sys.argv[1], environ={})
store = StateStore(config.daemon.state_dir / "sidekick.db")
Daemon(config, Parts(build_source(config), build_runner(config), store)).run()
"""


def swarm_world(
    tmp_path: Path,
    names: list[str],
    command: list[str],
    image: str,
    instance: str,
    profile_extra: dict[str, Any] | None = None,
    **kw: Any,
) -> World:
    """Projects under tmp_path, declared shared: every node of a one-machine swarm has them."""
    profile: dict[str, Any] = {
        "runner": "swarm",
        "image": image,
        "command": command,
        "claude": False,
        "shared_paths": [str(tmp_path)],
    }
    profile.update(profile_extra or {})
    agents = kw.pop("agents", {"default": profile})
    return make_world(
        tmp_path, names, command, agents=agents, containers={"instance": instance}, **kw
    )


def swarm_daemon(config: Config) -> tuple[Daemon, StateStore]:
    store = StateStore(config.daemon.state_dir / "sidekick.db")
    return Daemon(config, Parts(build_source(config), build_runner(config), store)), store


__all__ = ["DAEMON_SCRIPT", "swarm_daemon", "swarm_world", "tick_until", "unique"]

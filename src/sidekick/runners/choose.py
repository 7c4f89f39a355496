"""Build the runner the agent profiles need: tmux alone, or tmux and containers."""

from __future__ import annotations

from sidekick.config import Config
from sidekick.runners.base import Runner
from sidekick.runners.tmux import TmuxRunner


def build_runner(config: Config) -> Runner:
    tmux = TmuxRunner(config.tmux_socket)
    container_profiles = [n for n, p in config.agents.items() if p.runner == "container"]
    if not container_profiles:
        return tmux
    # Imported here: the Docker SDK costs start-up time and memory nobody else needs.
    from sidekick.runners.container import ContainerRunner
    from sidekick.runners.dispatch import DispatchingRunner

    first = ContainerRunner.from_config(config, container_profiles[0])
    runners = {container_profiles[0]: first}
    for name in container_profiles[1:]:
        runners[name] = ContainerRunner.from_config(config, name, engine=first.engine)
    return DispatchingRunner(tmux, runners)

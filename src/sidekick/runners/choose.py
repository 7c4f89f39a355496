"""Build the runner the agent profiles need (tmux alone, or tmux and containers),
and the listeners that tell the daemon at once when one of its agents ends."""

from __future__ import annotations

from collections.abc import Callable

from sidekick.background import BackgroundTask
from sidekick.config import Config
from sidekick.runners.base import Runner
from sidekick.runners.bell import ExitBell, bell_path
from sidekick.runners.tmux import TmuxRunner

# An exit listener is a background thread like any other; the daemon keeps it alive.
ExitListener = BackgroundTask


def _container_profiles(config: Config) -> list[str]:
    return [name for name, profile in config.agents.items() if profile.runner == "container"]


def _swarm_profiles(config: Config) -> list[str]:
    return [name for name, profile in config.agents.items() if profile.runner == "swarm"]


def _swarm_runners(config: Config) -> dict[str, Runner]:
    """One SwarmRunner per swarm profile, sharing one connection to the manager."""
    names = _swarm_profiles(config)
    if not names:
        return {}
    from sidekick.containers.swarm import SwarmEngine
    from sidekick.runners.swarm import SwarmRunner

    engine = SwarmEngine(config.containers)
    return {name: SwarmRunner.from_config(config, name, engine) for name in names}


def build_runner(config: Config) -> Runner:
    tmux = TmuxRunner(config.tmux_socket, bell=bell_path(config.daemon.state_dir))
    container_profiles = _container_profiles(config)
    swarm = _swarm_runners(config)
    if not container_profiles and not swarm:
        return tmux
    # Imported here: the Docker SDK costs start-up time and memory nobody else needs.
    from sidekick.runners.container import ContainerRunner
    from sidekick.runners.dispatch import DispatchingRunner

    runners: dict[str, ContainerRunner] = {}
    for name in container_profiles:
        first = next(iter(runners.values()), None)
        engine = first.engine if first else None
        runners[name] = ContainerRunner.from_config(config, name, engine=engine)
    return DispatchingRunner(tmux, runners, swarm)


def build_exit_listeners(
    config: Config, runner: Runner, on_exit: Callable[[], None]
) -> list[ExitListener]:
    """The exit bell for tmux agents, and the engine's events when containers run agents."""
    listeners: list[ExitListener] = [ExitBell(bell_path(config.daemon.state_dir), on_exit)]
    if _container_profiles(config):
        from sidekick.runners.container import ContainerExits
        from sidekick.runners.dispatch import DispatchingRunner

        if isinstance(runner, DispatchingRunner) and runner.containers:
            first = next(iter(runner.containers.values()))
            listeners.append(ContainerExits(first.engine, on_exit))
    return listeners

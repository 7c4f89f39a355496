"""One Runner in front of several: tmux for some agent profiles, containers or
Swarm jobs for others.

The reconciler sees a single runner. Starts go to the runner the profile
names; listing asks every runtime once and remembers which one reported each
key, so a stop or reap goes to the runtime that holds that agent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sidekick.errors import RunnerError
from sidekick.runners.base import LaunchSpec, LiveAgent, Runner
from sidekick.runners.container import ContainerRunner

logger = logging.getLogger(__name__)


class DispatchingRunner:
    name = "dispatch"

    def __init__(
        self,
        tmux: Runner,
        containers: Mapping[str, ContainerRunner],
        swarm: Mapping[str, Runner] | None = None,
    ) -> None:
        self.tmux = tmux
        self.containers = dict(containers)
        self.swarm = dict(swarm or {})
        self._owner: dict[str, Runner] = {}

    def _for_spec(self, spec: LaunchSpec) -> Runner:
        if spec.runner == "swarm":
            return self._swarm_for(spec)
        if spec.runner != "container":
            return self.tmux
        runner = self.containers.get(spec.profile)
        if runner is None:
            raise RunnerError(spec.key, f"no container runner for profile {spec.profile!r}")
        return runner

    def _swarm_for(self, spec: LaunchSpec) -> Runner:
        runner = self.swarm.get(spec.profile)
        if runner is None:
            raise RunnerError(spec.key, f"no swarm runner for profile {spec.profile!r}")
        return runner

    def _runtimes(self) -> list[Runner]:
        # Container runners share one engine and list the same labelled containers;
        # swarm runners share one manager and list the same labelled services.
        first = next(iter(self.containers.values()), None)
        runtimes = [self.tmux] if first is None else [self.tmux, first]
        return runtimes + list(self.swarm.values())[:1]

    def start(self, spec: LaunchSpec) -> None:
        runner = self._for_spec(spec)
        runner.start(spec)
        self._owner[spec.key] = runner

    def list_agents(self) -> dict[str, LiveAgent]:
        agents: dict[str, LiveAgent] = {}
        owners: dict[str, Runner] = {}
        for runtime in self._runtimes():
            for key, agent in runtime.list_agents().items():
                agents[key] = agent
                owners[key] = runtime
        self._owner = owners
        return agents

    def _owner_of(self, key: str) -> list[Runner]:
        owner = self._owner.get(key)
        return [owner] if owner is not None else self._runtimes()

    def stop(self, key: str, grace_seconds: float = 10.0) -> None:
        for runner in self._owner_of(key):
            runner.stop(key, grace_seconds)

    def reap(self, key: str) -> None:
        for runner in self._owner_of(key):
            runner.reap(key)

    def degraded(self) -> list[str]:
        """Runtimes that do not answer, for the heartbeat and ``sidekick status``."""
        # The container runners share one engine: asking one asks them all.
        first = next(iter(self.containers.values()), None)
        swarm = next(iter(self.swarm.values()), None)
        return [
            *self.tmux.degraded(),
            *(first.degraded() if first else []),
            *(swarm.degraded() if swarm else []),
        ]

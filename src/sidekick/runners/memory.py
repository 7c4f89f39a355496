"""A runner that keeps its agents in memory, for planner and reconciler tests.

It follows the tmux runner's rules (a taken key raises, a stopped agent is
gone, a finished one stays listed until reaped, a missing key is success) and
records every call, so a test can assert on what the reconciler asked for.
Tests drive the agents with :meth:`InMemoryRunner.finish`,
:meth:`InMemoryRunner.vanish` and :attr:`InMemoryRunner.available`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sidekick.errors import AgentAlreadyRunning, AgentNotFound, RunnerUnavailable
from sidekick.runners.base import LaunchSpec, LiveAgent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunnerCall:
    """One call a runner received."""

    action: str
    key: str
    spec: LaunchSpec | None = None
    grace_seconds: float | None = None


@dataclass
class _Agent:
    spec: LaunchSpec
    started_at: datetime
    exit_code: int | None = None

    def live(self) -> LiveAgent:
        return LiveAgent(self.spec.key, self.spec.run_id, self.started_at, self.exit_code)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class InMemoryRunner:
    """The :class:`~sidekick.runners.base.Runner` whose agents are dictionary entries."""

    name = "memory"

    def __init__(self, clock: Callable[[], datetime] = _utc_now) -> None:
        # What degraded() reports: tests set it to play an unreachable runtime.
        self.degraded_runtimes: list[str] = []
        self._clock = clock
        self._agents: dict[str, _Agent] = {}
        self._lock = threading.Lock()
        self.calls: list[RunnerCall] = []
        self.available = True
        """Set to False to make every call raise RunnerUnavailable, like a dead Docker engine."""

    # --- Runner ----------------------------------------------------------------------

    def start(self, spec: LaunchSpec) -> None:
        with self._lock:
            self._record(RunnerCall("start", spec.key, spec=spec))
            if spec.key in self._agents:
                raise AgentAlreadyRunning(spec.key, "an agent with this key is live")
            self._agents[spec.key] = _Agent(spec, self._clock())
        logger.info("started %s for %s (run %s)", spec.key, spec.project, spec.run_id)

    def list_agents(self) -> dict[str, LiveAgent]:
        with self._lock:
            self._check_available("")
            return {key: agent.live() for key, agent in self._agents.items()}

    def stop(self, key: str, grace_seconds: float = 10.0) -> None:
        with self._lock:
            self._record(RunnerCall("stop", key, grace_seconds=grace_seconds))
            self._agents.pop(key, None)
        logger.info("stopped %s", key)

    def degraded(self) -> list[str]:
        return list(self.degraded_runtimes)

    def reap(self, key: str) -> None:
        with self._lock:
            self._record(RunnerCall("reap", key))
            self._agents.pop(key, None)
        logger.info("reaped %s", key)

    def attach_command(self, key: str) -> list[str]:
        return ["true", key]

    # --- for tests -----------------------------------------------------------------

    def finish(self, key: str, exit_code: int) -> None:
        """End a live agent with this exit status; it stays listed until reaped."""
        with self._lock:
            agent = self._agents.get(key)
            if agent is None:
                raise AgentNotFound(key, "no agent to finish")
            agent.exit_code = exit_code

    def vanish(self, key: str) -> None:
        """Lose an agent without a status, as when its tmux server is killed."""
        with self._lock:
            self._agents.pop(key, None)

    def spec(self, key: str) -> LaunchSpec:
        """The launch spec of a listed agent."""
        with self._lock:
            agent = self._agents.get(key)
            if agent is None:
                raise AgentNotFound(key, "not listed")
            return agent.spec

    def calls_of(self, action: str) -> list[RunnerCall]:
        return [call for call in self.calls if call.action == action]

    @property
    def started(self) -> list[LaunchSpec]:
        """Every spec start() was called with, in order, refused ones included."""
        return [call.spec for call in self.calls_of("start") if call.spec is not None]

    def _record(self, call: RunnerCall) -> None:
        self._check_available(call.key)
        self.calls.append(call)

    def _check_available(self, key: str) -> None:
        if not self.available:
            raise RunnerUnavailable(key or "memory", "the runner was made unavailable")

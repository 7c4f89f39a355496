"""The Runner protocol: the one way the reconciler reaches running agents.

A runner knows agents only by their deterministic key (``sidekick-<slug>``).
The runtime (tmux server, Docker engine) is the truth about what is alive; a
runner keeps nothing in memory that a restart would lose.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class LaunchSpec:
    """Everything needed to start one run of one project's agent."""

    key: str
    project: str
    run_id: str
    argv: tuple[str, ...]
    cwd: Path
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    runner: str = "tmux"
    profile: str = ""
    stdin_path: Path | None = None
    """A file given to the agent as its standard input (its prompt); None: no input."""
    gpu: bool = False
    """The row needs a GPU: a runner that places agents on machines puts it on a GPU node."""


@dataclass(frozen=True)
class LiveAgent:
    """An agent the runtime reports, alive or ended but not yet reaped."""

    key: str
    run_id: str
    started_at: datetime | None = None
    exit_code: int | None = None

    @property
    def finished(self) -> bool:
        """True only once an exit status is known: a dead pane without one is not finished."""
        return self.exit_code is not None


class Runner(Protocol):
    """Starts, lists, stops and reaps agents by key."""

    name: str

    def start(self, spec: LaunchSpec) -> None:
        """Start the agent; raises AgentAlreadyRunning if the key is taken."""
        ...

    def list_agents(self) -> dict[str, LiveAgent]:
        """Every agent this runner manages, by key, with exit codes where known."""
        ...

    def stop(self, key: str, grace_seconds: float = 10.0) -> None:
        """Stop the agent (signal, then force after the grace period). Gone is success."""
        ...

    def reap(self, key: str) -> None:
        """Forget a finished agent (remove its session or container). Gone is success."""
        ...

    def degraded(self) -> list[str]:
        """Runtimes behind this runner that do not answer, for the heartbeat and status."""
        ...


def exit_status_path(log_path: Path) -> Path:
    """Where a run's exit status is written, beside its log, once the agent has ended."""
    return log_path.with_name(log_path.name + ".exit")


def read_exit_status(log_path: Path) -> int | None:
    """The recorded exit status of a run, or None while none has been written."""
    try:
        text = exit_status_path(log_path).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def write_private(path: Path, data: bytes) -> None:
    """Owner-only, all or nothing: the file may hold a prompt or an API key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)

"""Every error sidekick raises on purpose derives from :class:`SidekickError`.

Each subclass keeps its facts as typed fields and builds its own message from
them, so callers never format error text by hand and tests can assert on the
fields instead of on wording.
"""

from __future__ import annotations

from dataclasses import dataclass


class SidekickError(Exception):
    """Base of every error sidekick raises on purpose."""

    def __str__(self) -> str:
        return self.message()

    def message(self) -> str:
        return self.__class__.__name__


# --- configuration --------------------------------------------------------


@dataclass(eq=False)
class ConfigError(SidekickError):
    """The configuration cannot be used: names the file, the line when known, and the key."""

    file: str
    key: str
    problem: str
    line: int | None = None

    def message(self) -> str:
        where = f"{self.file}, line {self.line}" if self.line else self.file
        where = f"{where}: {self.key}" if self.key else where
        return f"{where}: {self.problem}"


# --- priority sources ---------------------------------------------------------


@dataclass(eq=False)
class PrioritySourceError(SidekickError):
    """A priority list could not be read or written at all."""

    source: str
    problem: str

    def message(self) -> str:
        return f"{self.source}: {self.problem}"


class SourceUnreadable(PrioritySourceError):
    """The list cannot be parsed at all; the last good list stays in force."""


class WriteConflict(PrioritySourceError):
    """The list kept changing under a write-back until the retries ran out."""


class SourceLocked(PrioritySourceError):
    """An editor holds the list open (its lock file exists); try again later."""


class SourceUnsettled(SourceLocked):
    """A program is still saving the list, or it reads half written; try again later."""


class SourceUnreachable(PrioritySourceError):
    """The list's service did not answer within its retry deadline; it may later."""


# --- agents and runners --------------------------------------------------------


@dataclass(eq=False)
class RunnerError(SidekickError):
    """A runner could not do what was asked for one agent."""

    key: str
    problem: str

    def message(self) -> str:
        return f"{self.key}: {self.problem}"


class AgentAlreadyRunning(RunnerError):
    """The deterministic key is taken: the project already has a live agent."""


class AgentNotFound(RunnerError):
    """No live agent carries that key."""


class RunnerUnavailable(RunnerError):
    """The runtime behind the runner (tmux server, Docker engine) is not reachable."""


# --- files sidekick wrote and reads back ----------------------------------------------


@dataclass(eq=False)
class StateFileError(SidekickError):
    """A file sidekick wrote earlier (heartbeat, status report, state database) is unusable;
    ``remedy`` says what a person can do about it, when there is something."""

    file: str
    problem: str
    remedy: str = ""

    def message(self) -> str:
        text = f"{self.file}: {self.problem}"
        return f"{text}: {self.remedy}" if self.remedy else text

"""Every error sidekick raises on purpose derives from :class:`SidekickError`.

Each subclass keeps its facts as typed fields and builds its own message from
them, so callers never format error text by hand and tests can assert on the
fields instead of on wording. The fields are set by a plain ``__init__`` rather
than by ``dataclasses``: every command imports these classes, and a command that
defines no dataclass does not import ``dataclasses`` (with the ``inspect`` it
loads: 6-8 ms of a ``prod logs`` on the CI machine, measured with -X importtime).
"""

from __future__ import annotations


class SidekickError(Exception):
    """Base of every error sidekick raises on purpose."""

    def __str__(self) -> str:
        return self.message()

    def message(self) -> str:
        return self.__class__.__name__


# --- configuration --------------------------------------------------------


class ConfigError(SidekickError):
    """The configuration cannot be used: names the file, the line when known, and the key."""

    def __init__(self, file: str, key: str, problem: str, line: int | None = None) -> None:
        super().__init__(file, key, problem, line)
        self.file, self.key, self.problem, self.line = file, key, problem, line

    def message(self) -> str:
        where = f"{self.file}, line {self.line}" if self.line else self.file
        where = f"{where}: {self.key}" if self.key else where
        return f"{where}: {self.problem}"


# --- priority sources ---------------------------------------------------------


class PrioritySourceError(SidekickError):
    """A priority list could not be read or written at all."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(source, problem)
        self.source, self.problem = source, problem

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


class RunnerError(SidekickError):
    """A runner could not do what was asked for one agent."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(key, problem)
        self.key, self.problem = key, problem

    def message(self) -> str:
        return f"{self.key}: {self.problem}"


class AgentAlreadyRunning(RunnerError):
    """The deterministic key is taken: the project already has a live agent."""


class AgentNotFound(RunnerError):
    """No live agent carries that key."""


class RunnerUnavailable(RunnerError):
    """The runtime behind the runner (tmux server, Docker engine) is not reachable."""


# --- files sidekick wrote and reads back ----------------------------------------------


class StateFileError(SidekickError):
    """A file sidekick wrote earlier (heartbeat, status report, state database) is unusable;
    ``remedy`` says what a person can do about it, when there is something."""

    def __init__(self, file: str, problem: str, remedy: str = "") -> None:
        super().__init__(file, problem, remedy)
        self.file, self.problem, self.remedy = file, problem, remedy

    def message(self) -> str:
        text = f"{self.file}: {self.problem}"
        return f"{text}: {self.remedy}" if self.remedy else text

"""Pure decisions: from what the list wants and what is running to a list of actions.

Nothing here touches a file, a process or a clock; the reconciler gathers the
facts into a :class:`PlanInput` and carries out the :data:`Action` values
that :func:`plan` returns. That keeps every rule testable in microseconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sidekick.models import SESSION_PREFIX, Project, ProjectStatus

_NO_SLOT = "waiting for a free agent slot"
NO_NEXT_ACTION = "not started: Next Action is empty; write in it what the agent should do"


@dataclass(frozen=True)
class RunningAgent:
    """A live agent as the planner sees it: the runtime's facts joined with its run."""

    key: str
    project: str
    started_at: datetime | None = None
    exit_code: int | None = None
    gpu: bool = False
    project_key: str = ""
    """The key of the project it works for, when it runs under another (an older name)."""

    @property
    def identity(self) -> str:
        """The project key this agent stands for."""
        return self.project_key or self.key


@dataclass(frozen=True)
class Start:
    project: Project
    interrupted: bool = False


@dataclass(frozen=True)
class Stop:
    """Stop a live agent; ``outcome`` is the status to write after, None to leave the row."""

    key: str
    project: str
    reason: str
    outcome: ProjectStatus | None = None


@dataclass(frozen=True)
class Finish:
    """An agent ended on its own: record it, write its outcome, reap it."""

    key: str
    project: str
    exit_code: int


@dataclass(frozen=True)
class Mark:
    """Set a row's status without any agent (a missing directory makes it Blocked)."""

    project: str
    status: ProjectStatus
    reason: str


@dataclass(frozen=True)
class Hold:
    """A pending project that will not start now, and why (shown in ``sidekick status``)."""

    project: str
    reason: str
    on_row: bool = False
    """Said on the row too (once): only the person can lift it, not a slot freeing up."""


Action = Start | Stop | Finish | Mark | Hold


@dataclass(frozen=True)
class PlanInput:
    projects: Sequence[Project]
    agents: Mapping[str, RunningAgent]
    now: datetime
    max_agents: int = 2
    gpu_slots: int = 1
    on_removed: str = "stop"
    preempt: bool = False
    max_runtime: float | None = None
    missing_directories: Mapping[str, str] = field(default_factory=dict)
    held: Mapping[str, str] = field(default_factory=dict)
    unserved: frozenset[str] = frozenset()
    """Keys of rows still in the list but not served (a bad cell, a duplicate name)."""
    no_next_action: frozenset[str] = frozenset()
    """Names of rows whose agent would be given an empty Next Action as its work."""


def plan(given: PlanInput) -> list[Action]:
    """Everything to do now, in the order to do it: ends and stops first, then starts."""
    by_key = {p.key: p for p in given.projects}
    actions: list[Action] = []
    busy: list[RunningAgent] = []
    for agent in sorted(given.agents.values(), key=lambda a: a.key):
        action = _judge_agent(agent, by_key.get(agent.identity), given)
        if action is not None:
            actions.append(action)
        if action is None:
            busy.append(agent)
    actions.extend(_starts(given, by_key, busy))
    return actions


def _judge_agent(
    agent: RunningAgent, project: Project | None, given: PlanInput
) -> Finish | Stop | None:
    if agent.exit_code is not None:
        return Finish(agent.key, agent.project, agent.exit_code)
    if _over_time(agent, given):
        reason = f"ran longer than max_runtime ({given.max_runtime:.0f} s)"
        return Stop(agent.key, agent.project, reason, ProjectStatus.FAILED)
    if given.on_removed != "stop":
        return None
    return _judge_row(agent, project, given.unserved)


def _judge_row(
    agent: RunningAgent, project: Project | None, unserved: frozenset[str]
) -> Stop | None:
    """Only a row that is gone, Blocked or Complete stops its agent."""
    if project is None and agent.identity in unserved:
        # The row is still there, only unreadable for now: its finding is shown instead.
        return None
    if project is None:
        return Stop(agent.key, agent.project, "row removed from the list")
    if project.status in (ProjectStatus.BLOCKED, ProjectStatus.COMPLETE):
        return Stop(agent.key, agent.project, f"row marked {project.status.value}")
    return None


def _over_time(agent: RunningAgent, given: PlanInput) -> bool:
    if given.max_runtime is None or agent.started_at is None:
        return False
    return (given.now - agent.started_at).total_seconds() > given.max_runtime


def _starts(
    given: PlanInput, by_key: Mapping[str, Project], busy: list[RunningAgent]
) -> list[Action]:
    actions: list[Action] = []
    live = {a.identity for a in given.agents.values()}
    slots = given.max_agents - len(busy)
    gpu_free = given.gpu_slots - sum(1 for a in busy if _uses_gpu(a, by_key))
    candidates = [p for p in _queue(given.projects) if p.key not in live]
    taken = _keys_taken(given.agents)
    if taken:
        actions.extend(Hold(p.name, taken[p.key]) for p in candidates if p.key in taken)
        candidates = [p for p in candidates if p.key not in taken]
    if given.no_next_action:
        # Said whether or not a slot is free: only the person can lift it.
        empty = given.no_next_action
        actions.extend(Hold(p.name, NO_NEXT_ACTION, True) for p in candidates if p.name in empty)
        candidates = [p for p in candidates if p.name not in empty]
    for index, project in enumerate(candidates):
        if slots <= 0:
            # With no slot free nothing else matters, and nothing more is looked up.
            actions.extend(Hold(p.name, _NO_SLOT) for p in candidates[index:])
            break
        reason = _blocker(project, given)
        if reason is not None:
            actions.append(reason)
        elif project.gpu and gpu_free <= 0:
            actions.append(Hold(project.name, "waiting for a GPU slot"))
        else:
            actions.append(Start(project, interrupted=project.status is ProjectStatus.IN_PROGRESS))
            slots -= 1
            gpu_free -= int(project.gpu)
    if given.preempt:
        actions.extend(_preemptions(given, by_key, busy, candidates))
    return actions


def _keys_taken(agents: Mapping[str, RunningAgent]) -> dict[str, str]:
    """Runtime keys held by an agent started for another project under an older name."""
    return {
        a.key: f"waiting for {a.key}, still running for {a.project}, to end"
        for a in agents.values()
        if a.project_key and a.project_key != a.key
    }


def _blocker(project: Project, given: PlanInput) -> Mark | Hold | None:
    if project.name in given.missing_directories:
        return Mark(project.name, ProjectStatus.BLOCKED, given.missing_directories[project.name])
    if project.name in given.held:
        return Hold(project.name, given.held[project.name])
    return None


def _uses_gpu(agent: RunningAgent, by_key: Mapping[str, Project]) -> bool:
    project = by_key.get(agent.identity)
    return agent.gpu or (project is not None and project.gpu)


def _queue(projects: Sequence[Project]) -> list[Project]:
    """Pending rows, and rows our own agent left In Progress, by priority, deadline, order.

    In Progress with someone else's name in Agent means a person is on it. (Written
    inline: this runs for every row of a list of thousands on every reconcile.)
    """
    pending, in_progress = ProjectStatus.PENDING, ProjectStatus.IN_PROGRESS
    wanted = [
        p
        for p in projects
        if p.status is pending or (p.status is in_progress and p.agent.startswith(SESSION_PREFIX))
    ]
    return sorted(wanted, key=lambda p: (p.priority, p.deadline or date.max, p.position))


def _preemptions(
    given: PlanInput,
    by_key: Mapping[str, Project],
    busy: list[RunningAgent],
    candidates: list[Project],
) -> list[Action]:
    """Stop the least important running agents that a more important waiting project outranks."""
    waiting = [p for p in candidates if _blocker(p, given) is None]
    waiting = waiting[max(0, given.max_agents - len(busy)) :]
    running = sorted(
        (by_key[a.identity] for a in busy if a.identity in by_key),
        key=lambda p: (p.priority, p.deadline or date.max, p.position),
        reverse=True,
    )
    stops: list[Action] = []
    for better, worse in zip(waiting, running, strict=False):
        if better.priority >= worse.priority:
            break
        reason = f"preempted by {better.name} (priority {better.priority})"
        stops.append(Stop(worse.key, worse.name, reason, ProjectStatus.PENDING))
    return stops

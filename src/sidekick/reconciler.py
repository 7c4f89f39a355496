"""One reconcile: read the list, look at what runs, plan, act, and queue the outcomes.

Each tick starts by exchanging with the list (write what the outbox holds,
read what the person saved), then joins the runtime's live agents with the
state store's open runs: a live agent with no open run is adopted, an open
run with no live agent has ended (its exit status file says how) or was
interrupted. The planner decides; this module carries its actions out, one
failure never stopping the rest, and writes what it did to the list before
the tick ends.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from sidekick import claude_code, run_ending
from sidekick.config import Config
from sidekick.directories import shared_directory_problem, shared_root_directories
from sidekick.errors import (
    AgentAlreadyRunning,
    RunnerUnavailable,
    SidekickError,
    SourceLocked,
    SourceUnreachable,
    WriteConflict,
)
from sidekick.launch import build_launch
from sidekick.models import (
    AgentRun,
    Project,
    ProjectStatus,
    RowUpdate,
    Snapshot,
    agent_key,
    legacy_agent_key,
)
from sidekick.planner import (
    Action,
    Finish,
    Hold,
    Mark,
    PlanInput,
    RunningAgent,
    Start,
    Stop,
    plan,
)
from sidekick.priorities.base import PrioritySource
from sidekick.production.auto import AfterRun
from sidekick.row_checks import directory_problem, waits_for_next_action
from sidekick.runners.base import LiveAgent, Runner, read_exit_status
from sidekick.state import RunEnd, StateStore

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 20
_OPEN_ROW = (ProjectStatus.IN_PROGRESS, ProjectStatus.PENDING)


@dataclass
class TickResult:
    """What one reconcile did; ``again`` asks for another tick right away."""

    actions: list[Action] = field(default_factory=list)
    snapshot: Snapshot | None = None
    again: bool = False
    errors: list[str] = field(default_factory=list)
    postponed: str = ""
    """Why the outbox could not be written to the list this time ('' when it was)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _new_run_id() -> str:
    return uuid.uuid4().hex[:12]


class Reconciler:
    def __init__(
        self,
        config: Config,
        source: PrioritySource,
        runner: Runner,
        store: StateStore,
        *,
        clock: Callable[[], datetime] = _utc_now,
        new_run_id: Callable[[], str] = _new_run_id,
    ) -> None:
        self.config = config
        self.source = source
        self.runner = runner
        self.store = store
        self.clock = clock
        self.new_run_id = new_run_id
        self._notes_written: dict[str, str] | None = None
        self._adopting = True
        # Production's part of a Complete run: files not deployed, the opt-in auto deploy.
        self.after_run = AfterRun(config, store, clock)

    def tick(self) -> TickResult:
        result = TickResult()
        snapshot = self._exchange(result)
        index = Identities(snapshot)
        agents = self._observe(index, result)
        # After observing: runs found ended there have queued their outcomes too.
        projects = _overlay(snapshot.projects, self.store.pending_updates()[0])
        given = self._plan_input(projects, agents, index.kept)
        given = replace(given, held={**index.held_by_old_agents(agents), **given.held})
        result.actions = plan(given)
        by_name = {p.name: p for p in projects}
        for action in result.actions:
            if not isinstance(action, Hold) or action.on_row:
                self._apply(action, by_name, result)
        self._keep_notes(result.actions)
        # One reconcile writes what it did: `run --once` leaves no row behind its agent.
        result.snapshot = self._write(result) or snapshot
        result.again = result.again or self._outbox_waiting(result.snapshot)
        return result

    # --- the list --------------------------------------------------------------

    def _exchange(self, result: TickResult) -> Snapshot:
        return self._write(result) or self.source.load()

    def _write(self, result: TickResult) -> Snapshot | None:
        """Write the outbox; the list as written, or None when nothing was written."""
        updates, seq = self.store.pending_updates()
        if not updates or result.postponed:
            return None
        try:
            written = self.source.write_back(updates)
        except (SourceLocked, SourceUnreachable, WriteConflict) as exc:
            logger.warning("write-back postponed: %s", exc)
            result.errors.append(str(exc))
            result.postponed = str(exc)
            return None
        # An update for a row that is there but ambiguous waits for the person to fix it.
        present = _unserved_names(written.snapshot)
        waiting = [name for name in written.missing if name in present]
        done = [u.project for u in updates if u.project not in waiting]
        self.store.clear_updates(done, seq)
        for name in written.missing:
            logger.info("no row to write the update on", extra={"project": name})
        return written.snapshot

    def _outbox_waiting(self, snapshot: Snapshot) -> bool:
        """Updates that another write could place (not those waiting for a row to be fixed)."""
        present = _unserved_names(snapshot)
        return any(u.project not in present for u in self.store.pending_updates()[0])

    # --- the runtime -------------------------------------------------------------

    def _observe(self, index: Identities, result: TickResult) -> dict[str, RunningAgent]:
        live = self.runner.list_agents()
        runs = self.store.active_runs()
        for key, agent in live.items():
            name = runs[key].project if key in runs else key
            self._isolated(result, name, self._watch, agent, runs, index)
        self._adopting = False
        for key, run in list(runs.items()):
            if key not in live:
                self._isolated(result, run.project, self._vanished, run, index.row(run))
        return {key: index.running(agent, runs.get(key)) for key, agent in live.items()}

    def _watch(self, agent: LiveAgent, runs: dict[str, AgentRun], index: Identities) -> None:
        if agent.key in runs:
            self._resume_watch(runs[agent.key])
        else:
            runs[agent.key] = self._adopt(agent, index.project(agent.key, None))

    def _isolated(
        self, result: TickResult, project: str, step: Callable[..., object], *args: object
    ) -> None:
        """One row's step: whatever it raises is that row's problem, not the reconcile's."""
        try:
            step(*args)
        except Exception as exc:
            self._row_failed(result, project, step.__name__.strip("_"), exc)

    def _row_failed(self, result: TickResult, project: str, step: str, exc: Exception) -> None:
        problem = str(exc) or type(exc).__name__
        result.errors.append(f"{project}: {problem}")
        # A traceback only for what nobody foresaw; a known error's message says it all.
        trace = None if isinstance(exc, SidekickError) else exc
        logger.error("%s failed: %s", step, problem, exc_info=trace, extra={"project": project})
        try:
            self.store.record_event(project, "error", f"{step}: {problem}")
        except Exception:
            logger.exception("cannot record the error", extra={"project": project})

    def _resume_watch(self, run: AgentRun) -> None:
        """A live agent with an open run: if this daemon just started, it takes the agent over."""
        if run.state == "starting":
            self.store.set_state(run.run_id, "running")
        if self._adopting:
            self.store.record_event(run.project, "adopted", f"adopted {run.key}", run_id=run.run_id)
            logger.info("adopted %s (run %s)", run.key, run.run_id, extra={"project": run.project})

    def _adopt(self, agent: LiveAgent, project: Project | None) -> AgentRun:
        """A live agent with no open run: take it over rather than start another."""
        known = self.store.get_run(agent.run_id) if agent.run_id else None
        if project is not None and project.status is ProjectStatus.PENDING:
            self._queue(project.name, ProjectStatus.IN_PROGRESS, agent.key, "adopted")
        if known is not None:
            self.store.set_state(known.run_id, "running")
            return replace(known, state="running")
        name = project.name if project else agent.key
        run = AgentRun(
            run_id=agent.run_id or self.new_run_id(),
            project=name,
            key=agent.key,
            command=(),
            started_at=agent.started_at or self.clock(),
            state="running",
            runner=self.runner.name,
            reason="adopted",
        )
        self.store.begin_run(run)
        self.store.record_event(name, "adopted", f"adopted running agent {agent.key}")
        logger.info("adopted %s", agent.key, extra={"project": name})
        return run

    def _vanished(self, run: AgentRun, row: Project | None) -> None:
        """An open run whose agent is gone: ended while unwatched, or interrupted."""
        exit_code = read_exit_status(Path(run.log_path)) if run.log_path else None
        if exit_code is not None:
            self._finish(run, exit_code, row)
            return
        if run.state == "stopping":
            self._close_stopped(run, None, row)
            return
        reason = "agent vanished without an exit status (interrupted)"
        self.store.end_run(run.run_id, RunEnd("interrupted", self.clock(), reason=reason))
        self.store.record_event(run.project, "interrupted", reason, run_id=run.run_id)
        logger.warning(reason, extra={"project": run.project})

    # --- planning ----------------------------------------------------------------

    def _plan_input(
        self,
        projects: Sequence[Project],
        agents: dict[str, RunningAgent],
        unserved: frozenset[str] = frozenset(),
    ) -> PlanInput:
        capacity, policy = self.config.capacity, self.config.policy
        return PlanInput(
            projects=projects,
            agents=agents,
            now=self.clock(),
            max_agents=capacity.max_agents,
            gpu_slots=capacity.gpu_slots,
            on_removed=policy.on_removed,
            preempt=policy.preempt,
            max_runtime=policy.max_runtime or None,
            missing_directories=self._missing_directories(projects, agents),
            held=self._budget_holds(projects),
            unserved=unserved,
            no_next_action=self._no_next_action(projects),
        )

    def _no_next_action(self, projects: Sequence[Project]) -> frozenset[str]:
        return frozenset(p.name for p in projects if waits_for_next_action(self.config, p))

    def _missing_directories(
        self, projects: Sequence[Project], agents: dict[str, RunningAgent]
    ) -> Mapping[str, str]:
        return MissingDirectories(self.config, {p.name: p for p in projects})

    def _budget_holds(self, projects: Sequence[Project]) -> dict[str, str]:
        budget = self.config.budget
        if budget.total_usd is None and budget.per_project_usd is None:
            return {}
        costs = self.store.costs()
        total = sum(costs.values())
        holds = {}
        for project in projects:
            if budget.total_usd is not None and total >= budget.total_usd:
                holds[project.name] = (
                    f"total budget spent (${total:.2f} of ${budget.total_usd:.2f})"
                )
            elif budget.per_project_usd is not None:
                spent = costs.get(project.name, 0.0)
                if spent >= budget.per_project_usd:
                    limit = budget.per_project_usd
                    holds[project.name] = f"project budget spent (${spent:.2f} of ${limit:.2f})"
        return holds

    # --- acting ------------------------------------------------------------------

    def _apply(self, action: Action, by_name: dict[str, Project], result: TickResult) -> None:
        project = _action_project(action)
        try:
            if isinstance(action, Start):
                self._start(action, result)
            elif isinstance(action, Stop):
                self._stop(action)
                result.again = True
            elif isinstance(action, Finish):
                self._finish_live(action, by_name.get(action.project))
            elif isinstance(action, Mark):
                self._mark(action, by_name.get(action.project))
            elif isinstance(action, Hold):
                self._note_held(action, by_name.get(action.project))
        except Exception as exc:
            self._row_failed(result, project, type(action).__name__.lower(), exc)

    def _start(self, action: Start, result: TickResult) -> None:
        """Start an agent; a start that cannot be made is said on its row, once."""
        project = action.project
        run_id = self.new_run_id()
        try:
            self._launch(action, run_id)
        except AgentAlreadyRunning as exc:
            # Not one of our agents (it would have been listed): a name a person took.
            self._end_unstarted(run_id, "already running")
            self._note_waiting(project, exc)
        except Exception as exc:
            self._end_unstarted(run_id, str(exc) or type(exc).__name__)
            self._row_failed(result, project.name, "start", exc)
            self._note_unstarted(project, exc)

    def _note_unstarted(self, project: Project, exc: Exception) -> None:
        """A runtime that is down keeps the row Pending (it starts when it is back); any
        other reason fails the row, so it is not retried every reconcile."""
        if isinstance(exc, RunnerUnavailable):
            self._note_waiting(project, exc)
            return
        problem = str(exc) or type(exc).__name__
        self._queue(project.name, ProjectStatus.FAILED, "", f"could not start: {problem}")

    def _note_waiting(self, project: Project, exc: Exception) -> None:
        """Why a start waits, on its row once: the same note is not written every reconcile."""
        note = f"waiting to start: {exc}"
        if not project.last_update.endswith(_short(note)):
            self._queue(project.name, project.status, None, note)

    def _note_held(self, action: Hold, row: Project | None) -> None:
        """Why a Pending row waits on the person, on the row once."""
        if row is not None and not row.last_update.endswith(_short(action.reason)):
            self._queue(action.project, None, None, action.reason)

    def _end_unstarted(self, run_id: str, reason: str) -> None:
        if self.store.get_run(run_id) is not None:
            self.store.end_run(run_id, RunEnd("failed_to_start", self.clock(), reason=reason))

    def _launch(self, action: Start, run_id: str) -> None:
        project = action.project
        directory = self.config.project_directory(project.name, project.directory)
        assert directory is not None  # the planner only starts projects with a directory
        resuming = action.interrupted and self.config.policy.resume_interrupted
        resume = self.store.last_session_id(project.name) if resuming else ""
        launch = build_launch(self.config, project, directory, run_id, resume)
        spec = launch.spec
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        run = AgentRun(
            run_id,
            project.name,
            spec.key,
            spec.argv,
            self.clock(),
            log_path=str(spec.log_path),
            runner=self.runner.name,
            reason=f"resuming {resume}" if resume else "",
        )
        self.store.begin_run(run)
        self.runner.start(spec)
        self.store.set_state(run_id, "running")
        note = "resumed" if resume else "started"
        self._queue(project.name, ProjectStatus.IN_PROGRESS, spec.key, note)
        self.store.record_event(
            project.name, note, f"{note} {spec.key}", run_id=run_id, argv=list(spec.argv)
        )
        logger.info("%s %s", note, spec.key, extra={"project": project.name})

    def _stop(self, action: Stop) -> None:
        run = self.store.active_runs().get(action.key)
        outcome = action.outcome.value if action.outcome else ""
        if run is not None:
            self.store.set_state(run.run_id, "stopping", action.reason, outcome)
        self.store.record_event(action.project, "stopping", action.reason)
        logger.info("stopping %s: %s", action.key, action.reason, extra={"project": action.project})
        self.runner.stop(action.key, self.config.policy.stop_grace)

    def _finish_live(self, action: Finish, row: Project | None) -> None:
        run = self.store.active_runs().get(action.key)
        if run is not None:
            self._finish(run, action.exit_code, row)
        self.runner.reap(action.key)

    def _finish(self, run: AgentRun, exit_code: int, row: Project | None) -> None:
        if run.state == "stopping":
            self._close_stopped(run, exit_code, row)
            return
        log_text = _read_log(run.log_path)
        outcome_facts = claude_code.parse_result(log_text)
        status, note = _outcome(exit_code, outcome_facts, log_text)
        if status is ProjectStatus.COMPLETE:
            note = self.after_run.note(run.project, run.run_id, note)
        reason = note
        end = RunEnd("finished", self.clock(), exit_code, reason, status.value)
        end = with_result(end, outcome_facts)
        # The outcome is queued before the run is closed: a crash in between
        # finishes the run again instead of leaving a done project looking interrupted.
        if row is None or row.status in _OPEN_ROW:
            self._queue(run.project, status, run.key, note)
        self.store.end_run(run.run_id, end)
        self.store.record_event(
            run.project,
            status.value.lower(),
            note,
            run_id=run.run_id,
            exit_code=exit_code,
            log_tail=_tail(log_text),
        )
        logger.info("%s: %s", run.key, note, extra={"project": run.project})

    def _close_stopped(self, run: AgentRun, exit_code: int | None, row: Project | None) -> None:
        outcome = ProjectStatus(run.outcome) if run.outcome else None
        facts = claude_code.parse_result(_read_log(run.log_path))
        end = with_result(
            RunEnd("stopped", self.clock(), exit_code, run.reason, run.outcome), facts
        )
        if outcome is not None or row is not None:
            # A row the person marked keeps the status they chose; its note says the agent stopped.
            self._queue(run.project, outcome, run.key, f"stopped: {run.reason}")
        self.store.end_run(run.run_id, end)
        self.store.record_event(run.project, "stopped", run.reason, run_id=run.run_id)

    def _mark(self, action: Mark, row: Project | None) -> None:
        if row is not None and row.status is action.status:
            return
        self._queue(action.project, action.status, None, action.reason)
        self.store.record_event(action.project, "marked", f"{action.status.value}: {action.reason}")
        logger.warning(
            "%s: %s", action.status.value, action.reason, extra={"project": action.project}
        )

    def _queue(
        self, project: str, status: ProjectStatus | None, agent: str | None, note: str
    ) -> None:
        stamp = self.clock().astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        self.store.queue_update(RowUpdate(project, status, agent, f"{stamp} · {_short(note)}"))

    def _keep_notes(self, actions: Sequence[Action]) -> None:
        notes = {a.project: a.reason for a in actions if isinstance(a, Hold | Mark)}
        if notes != self._notes_written:
            self.store.set_notes(notes)
            self._notes_written = notes


class Identities:
    """Which project each live agent works for, and which rows are there but not served.

    An agent is its project's by its run's record first (the name it was
    started for), then by its key, then by the key that project had before
    keys were unique, so an agent started under an older name is adopted, not
    started twice or stopped as a stranger.
    """

    def __init__(self, snapshot: Snapshot) -> None:
        self._projects = snapshot.projects
        self.by_key = {p.key: p for p in snapshot.projects}
        self._unserved_names = {
            name for name in _unserved_names(snapshot) if agent_key(name) not in self.by_key
        }
        self.unserved = frozenset(agent_key(name) for name in self._unserved_names)
        self._legacy: dict[str, str] | None = None
        self.shared_legacy: set[str] = set()
        """Older keys that several rows had: whose agent it is cannot be told, so it is kept."""

    @functools.cached_property
    def by_name(self) -> dict[str, Project]:
        return {p.name: p for p in self._projects}

    def identity(self, key: str, run: AgentRun | None) -> str:
        """The key of the project the agent under ``key`` works for."""
        if run is not None:
            own = agent_key(run.project)
            if own in self.by_key or own in self.unserved:
                return own
        if key in self.by_key or key in self.unserved:
            return key
        return self.legacy().get(key, key)

    def legacy(self) -> dict[str, str]:
        """Older key → project key, for older keys that only one row had."""
        if self._legacy is None:
            owners: dict[str, set[str]] = {}
            for name in (*self.by_name, *self._unserved_names):
                owners.setdefault(legacy_agent_key(name), set()).add(agent_key(name))
            self._legacy = {old: next(iter(new)) for old, new in owners.items() if len(new) == 1}
            self.shared_legacy = {old for old, new in owners.items() if len(new) > 1}
        return self._legacy

    @property
    def kept(self) -> frozenset[str]:
        """Keys whose agents stay although no served row is theirs."""
        return self.unserved | self.shared_legacy

    def held_by_old_agents(self, agents: Mapping[str, RunningAgent]) -> dict[str, str]:
        """Rows that may own a live agent started under an older key several rows had:
        none of them starts while it runs, so no project gets a second agent."""
        old = {a.key for a in agents.values() if a.identity in self.shared_legacy}
        if not old:
            return {}
        return {
            name: f"waiting for {legacy_agent_key(name)}, started by an older version, to end"
            for name in self.by_name
            if legacy_agent_key(name) in old
        }

    def project(self, key: str, run: AgentRun | None) -> Project | None:
        return self.by_key.get(self.identity(key, run))

    def row(self, run: AgentRun) -> Project | None:
        """The row an open run writes to: the one with its name."""
        return self.by_name.get(run.project) or self.by_key.get(run.key)

    def running(self, agent: LiveAgent, run: AgentRun | None) -> RunningAgent:
        identity = self.identity(agent.key, run)
        project = self.by_key.get(identity)
        name = run.project if run is not None else project.name if project else agent.key
        return RunningAgent(
            agent.key,
            name,
            run.started_at if run is not None else agent.started_at,
            agent.exit_code,
            gpu=bool(project and project.gpu),
            project_key=identity if identity != agent.key else "",
        )


def _unserved_names(snapshot: Snapshot | None) -> set[str]:
    """Names of rows still in the list that were not served (a bad cell, a duplicate)."""
    if snapshot is None:
        return set()
    return {f.project for f in snapshot.findings if f.project}


class MissingDirectories(Mapping[str, str]):
    """Project name → why its directory is missing, looked up only for projects asked about.

    The planner asks only about projects it is about to start, so a list of
    thousands of waiting projects costs no file system calls per reconcile.
    """

    def __init__(self, config: Config, projects: Mapping[str, Project]) -> None:
        self._config = config
        self._projects = projects
        self._found: dict[str, str | None] = {}
        self._shared: dict[str, list[str]] | None = None

    def _problem(self, name: str) -> str | None:
        if name not in self._found:
            self._found[name] = self._look(name)
        return self._found[name]

    def _look(self, name: str) -> str | None:
        project = self._projects.get(name)
        if project is None:
            return None
        others = self._sharing().get(name)
        if others:
            return shared_directory_problem(self._config, name, others)
        return directory_problem(self._config, project)

    def _sharing(self) -> dict[str, list[str]]:
        if self._shared is None:
            self._shared = shared_root_directories(self._config, self._projects.values())
        return self._shared

    def __getitem__(self, name: str) -> str:
        problem = self._problem(name)
        if problem is None:
            raise KeyError(name)
        return problem

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._problem(name) is not None

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._projects if name in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _action_project(action: Action) -> str:
    return action.project.name if isinstance(action, Start) else action.project


def _overlay(projects: Sequence[Project], updates: Sequence[RowUpdate]) -> list[Project]:
    """The list as it will read once the outbox is written, so no decision repeats."""
    pending = {u.project: u for u in updates}
    return [_with_update(p, pending[p.name]) if p.name in pending else p for p in projects]


def _with_update(project: Project, update: RowUpdate) -> Project:
    return replace(
        project,
        status=update.status or project.status,
        agent=project.agent if update.agent is None else update.agent,
    )


def _outcome(
    exit_code: int, facts: claude_code.AgentResult | None, log_text: str
) -> tuple[ProjectStatus, str]:
    ending = run_ending.describe_result(exit_code, facts, log_text)
    return ending.status, ending.note


def with_result(end: RunEnd, facts: claude_code.AgentResult | None) -> RunEnd:
    """The run's end with what its result JSON said: session, turns, tokens, cost."""
    if facts is None:
        return end
    return replace(
        end,
        session_id=facts.session_id,
        turns=facts.num_turns,
        input_tokens=facts.input_tokens,
        output_tokens=facts.output_tokens,
        cost_usd=facts.total_cost_usd,
    )


def _read_log(log_path: str) -> str:
    if not log_path:
        return ""
    try:
        return Path(log_path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _tail(text: str) -> list[str]:
    return text.splitlines()[-LOG_TAIL_LINES:]


def _short(note: str, limit: int = 160) -> str:
    note = " ".join(note.split())
    return note if len(note) <= limit else note[: limit - 1] + "…"

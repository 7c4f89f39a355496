"""One reconcile: read the list, look at what runs, plan, act, and queue the outcomes.

Each tick starts by exchanging with the list (write what the outbox holds,
read what the person saved), then joins the runtime's live agents with the
state store's open runs: a live agent with no open run is adopted, an open
run with no live agent has ended (its exit status file says how) or was
interrupted. The planner decides; this module carries its actions out, one
failure never stopping the rest.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from sidekick import claude_code
from sidekick.config import Config
from sidekick.errors import (
    AgentAlreadyRunning,
    SidekickError,
    SourceLocked,
    SourceUnreachable,
    WriteConflict,
)
from sidekick.launch import build_launch
from sidekick.models import AgentRun, Project, ProjectStatus, RowUpdate, Snapshot
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

    def tick(self) -> TickResult:
        result = TickResult()
        snapshot = self._exchange(result)
        result.snapshot = snapshot
        agents = self._observe(snapshot.projects)
        # After observing: runs found ended there have queued their outcomes too.
        projects = _overlay(snapshot.projects, self.store.pending_updates()[0])
        result.actions = plan(self._plan_input(projects, agents))
        by_name = {p.name: p for p in projects}
        for action in result.actions:
            if not isinstance(action, Hold):
                self._apply(action, by_name, result)
        self._keep_notes(result.actions)
        result.again = result.again or bool(self.store.pending_updates()[0])
        return result

    # --- the list --------------------------------------------------------------

    def _exchange(self, result: TickResult) -> Snapshot:
        updates, seq = self.store.pending_updates()
        if updates:
            try:
                written = self.source.write_back(updates)
            except (SourceLocked, SourceUnreachable, WriteConflict) as exc:
                logger.warning("write-back postponed: %s", exc)
                result.errors.append(str(exc))
                result.postponed = str(exc)
            else:
                self.store.clear_updates([u.project for u in updates], seq)
                for name in written.missing:
                    logger.info("row gone before its update was written", extra={"project": name})
                if written.snapshot is not None:
                    return written.snapshot
        return self.source.load()

    # --- the runtime -------------------------------------------------------------

    def _observe(self, projects: Sequence[Project]) -> dict[str, RunningAgent]:
        live = self.runner.list_agents()
        runs = self.store.active_runs()
        by_key = {p.key: p for p in projects}
        for key, agent in live.items():
            if key not in runs:
                runs[key] = self._adopt(agent, by_key.get(key))
            else:
                self._resume_watch(runs[key])
        self._adopting = False
        for key, run in runs.items():
            if key not in live:
                self._vanished(run, by_key.get(key))
        return {
            key: RunningAgent(
                key,
                runs[key].project,
                runs[key].started_at,
                agent.exit_code,
                gpu=bool(by_key.get(key) and by_key[key].gpu),
            )
            for key, agent in live.items()
        }

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
            self._close_stopped(run, None)
            return
        reason = "agent vanished without an exit status (interrupted)"
        self.store.end_run(run.run_id, RunEnd("interrupted", self.clock(), reason=reason))
        self.store.record_event(run.project, "interrupted", reason, run_id=run.run_id)
        logger.warning(reason, extra={"project": run.project})

    # --- planning ----------------------------------------------------------------

    def _plan_input(
        self, projects: Sequence[Project], agents: dict[str, RunningAgent]
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
        )

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
                self._start(action)
            elif isinstance(action, Stop):
                self._stop(action)
                result.again = True
            elif isinstance(action, Finish):
                self._finish_live(action, by_name.get(action.project))
            elif isinstance(action, Mark):
                self._mark(action, by_name.get(action.project))
        except SidekickError as exc:
            result.errors.append(f"{project}: {exc}")
            self.store.record_event(project, "error", str(exc))
            logger.error("%s failed: %s", type(action).__name__, exc, extra={"project": project})

    def _start(self, action: Start) -> None:
        project = action.project
        directory = self.config.project_directory(project.name, project.directory)
        assert directory is not None  # the planner only starts projects with a directory
        run_id = self.new_run_id()
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
        try:
            self.runner.start(spec)
        except AgentAlreadyRunning:
            self.store.end_run(
                run_id, RunEnd("failed_to_start", self.clock(), reason="already running")
            )
            return
        except SidekickError as exc:
            self.store.end_run(run_id, RunEnd("failed_to_start", self.clock(), reason=str(exc)))
            raise
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
            self._close_stopped(run, exit_code)
            return
        log_text = _read_log(run.log_path)
        outcome_facts = claude_code.parse_result(log_text)
        status, note = _outcome(exit_code, outcome_facts, log_text)
        reason = note if status is ProjectStatus.FAILED else ""
        end = RunEnd("finished", self.clock(), exit_code, reason, status.value)
        end = _with_result(end, outcome_facts)
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

    def _close_stopped(self, run: AgentRun, exit_code: int | None) -> None:
        outcome = ProjectStatus(run.outcome) if run.outcome else None
        facts = claude_code.parse_result(_read_log(run.log_path))
        end = _with_result(
            RunEnd("stopped", self.clock(), exit_code, run.reason, run.outcome), facts
        )
        if outcome is not None:
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

    def _queue(self, project: str, status: ProjectStatus, agent: str | None, note: str) -> None:
        stamp = self.clock().astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        self.store.queue_update(RowUpdate(project, status, agent, f"{stamp} · {_short(note)}"))

    def _keep_notes(self, actions: Sequence[Action]) -> None:
        notes = {a.project: a.reason for a in actions if isinstance(a, Hold | Mark)}
        if notes != self._notes_written:
            self.store.set_notes(notes)
            self._notes_written = notes


class MissingDirectories(Mapping[str, str]):
    """Project name → why its directory is missing, looked up only for projects asked about.

    The planner asks only about projects it is about to start, so a list of
    thousands of waiting projects costs no file system calls per reconcile.
    """

    def __init__(self, config: Config, projects: Mapping[str, Project]) -> None:
        self._config = config
        self._projects = projects
        self._found: dict[str, str | None] = {}

    def _problem(self, name: str) -> str | None:
        if name not in self._found:
            self._found[name] = self._look(name)
        return self._found[name]

    def _look(self, name: str) -> str | None:
        project = self._projects.get(name)
        if project is None:
            return None
        directory = self._config.project_directory(project.name, project.directory)
        if directory is None:
            return (
                "no directory configured (add it under projects: in the config,"
                " a Directory column, or set projects_root)"
            )
        if not directory.is_dir():
            return f"directory {directory} does not exist"
        return None

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
    if exit_code == 0 and not (facts and facts.is_error):
        cost = f" (${facts.total_cost_usd:.4f})" if facts and facts.total_cost_usd else ""
        return ProjectStatus.COMPLETE, f"complete{cost}"
    if facts is not None and facts.api_error:
        return ProjectStatus.FAILED, f"failed: {facts.api_error}"
    last = next((line for line in reversed(log_text.splitlines()) if line.strip()), "")
    detail = f": {last.strip()}" if last else ""
    return ProjectStatus.FAILED, f"failed: exit {exit_code}{detail}"


def _with_result(end: RunEnd, facts: claude_code.AgentResult | None) -> RunEnd:
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

"""One row's failure is that row's: whatever a runtime raises, the other projects go on.

The runtime here is the in-memory runner with chosen calls failing the way real
ones do (E2BIG from exec, a refused tmux command, a dead engine, a bug).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sidekick.errors import AgentAlreadyRunning, RunnerError, RunnerUnavailable
from sidekick.models import ProjectStatus, agent_key
from sidekick.priorities.memory import InMemorySource
from sidekick.reconciler import Reconciler
from sidekick.runners.base import LaunchSpec
from sidekick.runners.memory import InMemoryRunner, RunnerCall
from sidekick.state import StateStore
from tests.daemon.world import World, make_world

P = ProjectStatus


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


class FailingRunner(InMemoryRunner):
    """The in-memory runtime, with the calls for chosen projects raising chosen errors."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.start_errors: dict[str, BaseException] = {}
        self.stop_errors: dict[str, BaseException] = {}

    def start(self, spec: LaunchSpec) -> None:
        error = self.start_errors.get(spec.project)
        if error is not None:
            self.calls.append(RunnerCall("start", spec.key, spec=spec))
            raise error
        super().start(spec)

    def stop(self, key: str, grace_seconds: float = 10.0) -> None:
        error = self.stop_errors.get(key)
        if error is not None:
            raise error
        super().stop(key, grace_seconds)


NAMES = ["huge", "refused", "buggy", "silent", "undecodable", "fine", "also-fine"]
START_ERRORS: dict[str, BaseException] = {
    "huge": OSError(errno.E2BIG, "Argument list too long"),
    "refused": RunnerError("sidekick-refused", "tmux new-session: command too long"),
    "buggy": RuntimeError("something nobody foresaw"),
    "silent": KeyError(),
    "undecodable": UnicodeEncodeError("utf-8", "caf\udce9", 3, 4, "surrogates not allowed"),
}


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path, NAMES, ["true"], capacity={"max_agents": 10})


@pytest.fixture
def store(world: World) -> Iterator[StateStore]:
    opened = StateStore(world.state / "sidekick.db")
    yield opened
    opened.close()


def pending(*names: str) -> InMemorySource:
    return InMemorySource(
        [{"Project": n, "Priority": str(i), "Status": "Pending"} for i, n in enumerate(names)]
    )


def test_a_start_that_raises_fails_its_row_once_and_every_other_project_starts(
    world: World, store: StateStore
) -> None:
    clock, source = Clock(), pending(*NAMES)
    runner = FailingRunner(clock)
    runner.start_errors.update(START_ERRORS)
    reconciler = Reconciler(world.config(), source, runner, store, clock=clock)
    first = reconciler.tick()
    assert sorted(runner.list_agents()) == [agent_key("also-fine"), agent_key("fine")]
    assert len(first.errors) == len(START_ERRORS)
    # Written in the same reconcile, failed rows included.
    assert source.row("fine")["Status"] == "In Progress"
    assert source.row("huge")["Last Update"].endswith(
        "could not start: [Errno 7] Argument list too long"
    )
    assert "tmux new-session: command too long" in source.row("refused")["Last Update"]
    assert "something nobody foresaw" in source.row("buggy")["Last Update"]
    assert "surrogates not allowed" in source.row("undecodable")["Last Update"]
    assert source.row("silent")["Last Update"].endswith("could not start: KeyError")
    for name in START_ERRORS:
        assert source.row(name)["Status"] == "Failed"
        (run,) = store.runs(name)
        assert run.state == "failed_to_start"
    clock.advance(5)
    starts = len(runner.calls_of("start"))
    again = reconciler.tick()
    assert again.errors == [] and len(runner.calls_of("start")) == starts
    assert store.active_runs().keys() == runner.list_agents().keys()


@pytest.mark.parametrize(
    ("error", "why"),
    [
        (RunnerUnavailable("/var/run/docker.sock", "engine not running"), "engine not running"),
        # A session a person named like an agent: not ours, so not listed, but the name is taken.
        (AgentAlreadyRunning("sidekick-huge", "a tmux session with this name is live"), "is live"),
    ],
)
def test_a_start_that_must_wait_keeps_the_row_pending_with_one_note(
    world: World, store: StateStore, error: Exception, why: str
) -> None:
    clock, source = Clock(), pending("fine", "huge")
    runner = FailingRunner(clock)
    runner.start_errors["huge"] = error
    reconciler = Reconciler(world.config(), source, runner, store, clock=clock)
    reconciler.tick()
    note = source.row("huge")["Last Update"]
    assert source.row("huge")["Status"] == "Pending"
    assert note == f"2026-11-30 09:00 UTC · waiting to start: {error}" and why in note
    for _ in range(3):
        clock.advance(1)
        reconciler.tick()
        assert source.row("huge")["Last Update"] == note
    del runner.start_errors["huge"]
    reconciler.tick()
    assert source.row("huge")["Status"] == "In Progress"
    assert agent_key("huge") in runner.list_agents()


def test_a_stop_that_raises_does_not_keep_other_projects_from_starting_or_finishing(
    world: World, store: StateStore
) -> None:
    clock, source = Clock(), pending("huge", "refused", "fine")
    runner = FailingRunner(clock)
    reconciler = Reconciler(world.config(), source, runner, store, clock=clock)
    reconciler.tick()
    runner.stop_errors[agent_key("huge")] = OSError(errno.EIO, "Input/output error")
    source.delete("huge")
    source.add(Project="also-fine", Priority="9", Status="Pending")
    runner.finish(agent_key("refused"), 0)
    result = reconciler.tick()
    assert result.errors == ["huge: [Errno 5] Input/output error"]
    assert source.row("refused")["Status"] == "Complete"
    assert source.row("also-fine")["Status"] == "In Progress"
    del runner.stop_errors[agent_key("huge")]
    reconciler.tick()
    assert agent_key("huge") not in runner.list_agents()


def test_a_finish_that_raises_does_not_keep_others_from_being_recorded(
    world: World, store: StateStore
) -> None:
    clock, source = Clock(), pending("huge", "fine")
    runner = FailingRunner(clock)
    reconciler = Reconciler(world.config(), source, runner, store, clock=clock)
    reconciler.tick()
    # Its log is unreadable (a directory where the file should be): reading it raises.
    log = Path(store.active_runs()[agent_key("huge")].log_path)
    log.mkdir(parents=True)
    runner.finish(agent_key("huge"), 0)
    runner.finish(agent_key("fine"), 0)
    result = reconciler.tick()
    assert len(result.errors) == 1 and result.errors[0].startswith("huge: ")
    assert source.row("fine")["Status"] == "Complete"
    assert "error" in [e.kind for e in store.events("huge")]

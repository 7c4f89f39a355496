"""What the in-memory runner offers tests beyond the shared contract."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from sidekick.errors import AgentAlreadyRunning, AgentNotFound, RunnerUnavailable
from sidekick.runners.memory import InMemoryRunner, RunnerCall
from tests.runners.helpers import make_spec

KEY = "sidekick-alpha"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_every_call_is_recorded_in_order_refused_starts_included(tmp_path: Path) -> None:
    runner = InMemoryRunner(clock=lambda: NOW)
    first = make_spec(tmp_path, KEY, ("a",), run_id="1")
    second = make_spec(tmp_path, KEY, ("a",), run_id="2")
    runner.start(first)
    with pytest.raises(AgentAlreadyRunning):
        runner.start(second)
    runner.stop(KEY, grace_seconds=3)
    runner.reap("sidekick-gone")
    assert runner.calls == [
        RunnerCall("start", KEY, spec=first),
        RunnerCall("start", KEY, spec=second),
        RunnerCall("stop", KEY, grace_seconds=3),
        RunnerCall("reap", "sidekick-gone"),
    ]
    assert runner.started == [first, second]


def test_started_at_comes_from_the_injected_clock(tmp_path: Path) -> None:
    runner = InMemoryRunner(clock=lambda: NOW)
    runner.start(make_spec(tmp_path, KEY, ("a",)))
    assert runner.list_agents()[KEY].started_at == NOW
    assert runner.spec(KEY).argv == ("a",)


def test_finishing_an_unknown_agent_is_an_error() -> None:
    with pytest.raises(AgentNotFound):
        InMemoryRunner().finish(KEY, 0)


def test_a_vanished_agent_is_gone_without_a_status(tmp_path: Path) -> None:
    runner = InMemoryRunner()
    runner.start(make_spec(tmp_path, KEY, ("a",)))
    runner.vanish(KEY)
    assert runner.list_agents() == {}
    runner.start(make_spec(tmp_path, KEY, ("a",)))


def test_an_unavailable_runner_refuses_every_call(tmp_path: Path) -> None:
    runner = InMemoryRunner()
    runner.available = False
    with pytest.raises(RunnerUnavailable):
        runner.list_agents()
    with pytest.raises(RunnerUnavailable):
        runner.start(make_spec(tmp_path, KEY, ("a",)))
    runner.available = True
    assert runner.list_agents() == {}

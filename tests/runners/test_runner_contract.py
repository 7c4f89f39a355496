"""The behaviour every runner shares, proved against the tmux runner and the in-memory one."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pytest

from sidekick.errors import AgentAlreadyRunning
from sidekick.runners.base import LaunchSpec, LiveAgent, Runner
from sidekick.runners.memory import InMemoryRunner
from sidekick.runners.tmux import TmuxRunner
from tests.runners.helpers import WAIT_FOR_RELEASE, make_spec, release, wait_for, write_script


class Harness(Protocol):
    @property
    def runner(self) -> Runner: ...

    def spec(self, key: str, run_id: str = "") -> LaunchSpec: ...

    def finish(self, key: str, exit_code: int) -> LiveAgent: ...


class TmuxHarness:
    def __init__(self, runner: TmuxRunner, root: Path) -> None:
        self.runner = runner
        self.root = root
        self.agent = write_script(root, "agent.sh", WAIT_FOR_RELEASE)

    def spec(self, key: str, run_id: str = "") -> LaunchSpec:
        env = {"RELEASE": str(self._release_file(key))}
        return make_spec(self.root, key, (str(self.agent),), run_id=run_id, env=env)

    def finish(self, key: str, exit_code: int) -> LiveAgent:
        release(self._release_file(key), exit_code)
        return wait_for(lambda: _finished(self.runner, key), what=f"{key} to finish")

    def _release_file(self, key: str) -> Path:
        return self.root / f"{key}.release"


class MemoryHarness:
    def __init__(self, root: Path) -> None:
        self.runner = InMemoryRunner()
        self.root = root

    def spec(self, key: str, run_id: str = "") -> LaunchSpec:
        return make_spec(self.root, key, ("agent",), run_id=run_id)

    def finish(self, key: str, exit_code: int) -> LiveAgent:
        assert isinstance(self.runner, InMemoryRunner)
        self.runner.finish(key, exit_code)
        return self.runner.list_agents()[key]


def _finished(runner: Runner, key: str) -> LiveAgent | None:
    agent = runner.list_agents().get(key)
    return agent if agent is not None and agent.finished else None


@pytest.fixture(params=["tmux", "memory"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    if request.param == "tmux":
        runner: TmuxRunner = request.getfixturevalue("tmux_runner")
        return TmuxHarness(runner, tmp_path)
    return MemoryHarness(tmp_path)


def test_nothing_is_listed_before_anything_starts(harness: Harness) -> None:
    assert harness.runner.list_agents() == {}


def test_a_started_agent_is_listed_by_key_and_not_finished(harness: Harness) -> None:
    harness.runner.start(harness.spec("sidekick-alpha", run_id="r1"))
    agent = harness.runner.list_agents()["sidekick-alpha"]
    assert (agent.key, agent.run_id, agent.finished) == ("sidekick-alpha", "r1", False)
    assert agent.started_at is not None


@pytest.mark.parametrize("exit_code", [0, 3])
def test_an_ended_agent_stays_listed_with_its_exit_code(harness: Harness, exit_code: int) -> None:
    harness.runner.start(harness.spec("sidekick-alpha"))
    agent = harness.finish("sidekick-alpha", exit_code)
    assert agent.exit_code == exit_code
    assert harness.runner.list_agents()["sidekick-alpha"].exit_code == exit_code


def test_a_second_start_for_a_key_is_refused_and_the_first_keeps_running(
    harness: Harness,
) -> None:
    harness.runner.start(harness.spec("sidekick-alpha", run_id="first"))
    with pytest.raises(AgentAlreadyRunning) as refused:
        harness.runner.start(harness.spec("sidekick-alpha", run_id="second"))
    assert refused.value.key == "sidekick-alpha"
    agent = harness.runner.list_agents()["sidekick-alpha"]
    assert (agent.run_id, agent.finished) == ("first", False)


def test_a_finished_agent_still_holds_its_key_until_reaped(harness: Harness) -> None:
    harness.runner.start(harness.spec("sidekick-alpha", run_id="first"))
    harness.finish("sidekick-alpha", 0)
    with pytest.raises(AgentAlreadyRunning):
        harness.runner.start(harness.spec("sidekick-alpha", run_id="second"))
    harness.runner.reap("sidekick-alpha")
    harness.runner.start(harness.spec("sidekick-alpha", run_id="second"))
    assert harness.runner.list_agents()["sidekick-alpha"].run_id == "second"


def test_agents_of_different_keys_run_side_by_side(harness: Harness) -> None:
    harness.runner.start(harness.spec("sidekick-alpha"))
    harness.runner.start(harness.spec("sidekick-alphabet"))
    harness.finish("sidekick-alpha", 1)
    agents = harness.runner.list_agents()
    assert agents["sidekick-alpha"].exit_code == 1
    assert not agents["sidekick-alphabet"].finished


def test_reap_forgets_a_finished_agent(harness: Harness) -> None:
    harness.runner.start(harness.spec("sidekick-alpha"))
    harness.finish("sidekick-alpha", 0)
    harness.runner.reap("sidekick-alpha")
    assert "sidekick-alpha" not in harness.runner.list_agents()


def test_stop_removes_a_live_agent(harness: Harness) -> None:
    harness.runner.start(harness.spec("sidekick-alpha"))
    harness.runner.start(harness.spec("sidekick-beta"))
    harness.runner.stop("sidekick-alpha", grace_seconds=5)
    assert set(harness.runner.list_agents()) == {"sidekick-beta"}


def test_stop_removes_a_finished_agent_too(harness: Harness) -> None:
    harness.runner.start(harness.spec("sidekick-alpha"))
    harness.finish("sidekick-alpha", 0)
    harness.runner.stop("sidekick-alpha", grace_seconds=5)
    assert harness.runner.list_agents() == {}


def test_stop_and_reap_of_an_unknown_key_succeed(harness: Harness) -> None:
    harness.runner.stop("sidekick-nobody", grace_seconds=1)
    harness.runner.reap("sidekick-nobody")
    harness.runner.start(harness.spec("sidekick-alpha"))
    harness.runner.stop("sidekick-alph", grace_seconds=1)
    harness.runner.reap("sidekick-alph")
    assert set(harness.runner.list_agents()) == {"sidekick-alpha"}

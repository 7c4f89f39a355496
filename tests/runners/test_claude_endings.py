"""Every way a real Claude Code run ends, said in words: CLI, wrapper and tmux against the mock.

Each run goes the daemon's way: a row through :func:`build_launch` (the
default profile, the prompt on stdin), :class:`TmuxRunner`, the agent wrapper
and the real ``claude`` CLI talking to the mock API; the run's exit status and
log then become a status and a sentence through :mod:`sidekick.run_ending`.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidekick import claude_code
from sidekick.config import AgentProfile, ApiConfig, Config, DaemonConfig
from sidekick.launch import build_launch
from sidekick.models import Project, ProjectStatus
from sidekick.run_ending import RunEnding, describe
from sidekick.runners import agent_lock
from sidekick.runners.base import LiveAgent
from sidekick.runners.tmux import TmuxRunner
from tests.claude_cli import claude_path
from tests.mockapi import MockServer, mock_server
from tests.runners.helpers import wait_for

pytestmark = pytest.mark.claude

SCENARIOS = Path(__file__).parents[1] / "mock_claude" / "endings.yaml"
KEY = "sk-ant-mock-endings-0123456789abcdef"
RUN_SECONDS = 90
KEY_OF_ALPHA = Project("Alpha", 1, ProjectStatus.PENDING).key
WITHOUT_BASH = tuple(a for a in claude_code.DEFAULT_COMMAND if a not in ("--allowedTools", "Bash"))
PROFILES = {
    "max-turns": AgentProfile(command=(*claude_code.DEFAULT_COMMAND, "--max-turns", "1")),
    "no-bash": AgentProfile(command=WITHOUT_BASH),
    "bogus-option": AgentProfile(command=(*claude_code.DEFAULT_COMMAND, "--bogus")),
}


@pytest.fixture(scope="module")
def claude_cli() -> str:
    return claude_path()


@pytest.fixture(scope="module")
def endings_mock(claude_cli: str) -> Iterator[MockServer]:
    with mock_server(SCENARIOS, api_keys=[KEY]) as server:
        yield server


def config_for(tmp_path: Path, base_url: str, key: str = KEY) -> Config:
    key_file = tmp_path / "api_key"
    key_file.write_text(key + "\n", encoding="utf-8")
    return Config(
        daemon=DaemonConfig(state_dir=tmp_path / "state"),
        api=ApiConfig(base_url=base_url, key_file=key_file),
        agents={"default": AgentProfile(), **PROFILES},
    )


class Agents:
    """Starts rows the daemon's way and waits for their ends."""

    def __init__(self, runner: TmuxRunner, root: Path) -> None:
        self.runner = runner
        self.root = root

    def start(self, config: Config, prompt: str, model: str = "", run_id: str = "run-1") -> Path:
        """Start a run of row Alpha; its log's path."""
        row = Project("Alpha", 1, ProjectStatus.PENDING, next_action=prompt, model=model)
        directory = self.root / "project"
        directory.mkdir(exist_ok=True)
        spec = build_launch(config, row, directory, run_id=run_id).spec
        self.runner.start(spec)
        return spec.log_path

    def ending(self, log_path: Path) -> tuple[RunEnding, str]:
        agent: LiveAgent = wait_for(
            lambda: _finished(self.runner, KEY_OF_ALPHA), timeout=RUN_SECONDS, what="run end"
        )
        assert agent.exit_code is not None
        log = log_path.read_text(encoding="utf-8")
        return describe(agent.exit_code, log), log

    def run(
        self, config: Config, prompt: str, model: str = "", run_id: str = "run-1"
    ) -> tuple[RunEnding, str]:
        return self.ending(self.start(config, prompt, model, run_id))


def _finished(runner: TmuxRunner, key: str) -> LiveAgent | None:
    agent = runner.list_agents().get(key)
    return agent if agent is not None and agent.finished else None


@pytest.fixture
def agents(tmux_runner: TmuxRunner, tmp_path: Path) -> Agents:
    return Agents(tmux_runner, tmp_path)


def test_a_run_that_succeeds_is_complete_with_its_turns_and_cost(
    agents: Agents, endings_mock: MockServer, tmp_path: Path
) -> None:
    ending, log = agents.run(config_for(tmp_path, endings_mock.base_url), "Say done.")
    assert ending.status is ProjectStatus.COMPLETE, log
    assert ending.note.startswith("complete (1 turn, $")


@pytest.mark.parametrize(
    "prompt",
    ["- fix the flaky login test", "- fix the flaky login test\n- and the signup one too"],
    ids=["one-item", "two-items"],
)
def test_a_prompt_written_as_a_markdown_list_reaches_claude_as_the_prompt(
    agents: Agents, endings_mock: MockServer, tmp_path: Path, prompt: str
) -> None:
    ending, log = agents.run(config_for(tmp_path, endings_mock.base_url), prompt)
    assert ending.status is ProjectStatus.COMPLETE, log
    facts = claude_code.parse_result(log)
    assert facts is not None and facts.result == "Fixed the flaky login test."


def test_a_prompt_longer_than_one_argument_may_be_reaches_claude_whole(
    agents: Agents, endings_mock: MockServer, tmp_path: Path
) -> None:
    prompt = "sidekick-long-prompt: " + "Describe every module in detail. " * 4300
    assert len(prompt) > 140_000
    ending, log = agents.run(config_for(tmp_path, endings_mock.base_url), prompt)
    assert ending.status is ProjectStatus.COMPLETE, log
    facts = claude_code.parse_result(log)
    assert facts is not None and facts.result == "Read the whole prompt."


def test_the_turn_limit_is_said_in_words_not_raw_json(
    agents: Agents, endings_mock: MockServer, tmp_path: Path
) -> None:
    config = config_for(tmp_path, endings_mock.base_url)
    ending, log = agents.run(config, "sidekick-loop", model="max-turns")
    assert ending.status is ProjectStatus.FAILED, log
    assert ending.note.startswith("stopped at the turn limit after 2 turns")
    assert "Reached maximum number of turns (1)" in ending.note
    assert "--max-turns" in ending.note and "{" not in ending.note


def test_denied_tool_calls_are_never_a_plain_complete(
    agents: Agents, endings_mock: MockServer, tmp_path: Path
) -> None:
    config = config_for(tmp_path, endings_mock.base_url)
    ending, log = agents.run(config, "sidekick-run-tests-and-push", model="no-bash")
    assert ending.status is ProjectStatus.BLOCKED, log
    assert ending.note.startswith(
        "complete · 2 tool calls denied (Bash: python3 -m pytest -q; git push origin HEAD)"
    )
    assert "--allowedTools" in ending.note


@pytest.mark.parametrize(
    ("prompt", "words"),
    [
        ("sidekick-bad-request", "the prompt is too long for the model (400)"),
        ("sidekick-forbidden", "the API key may not do this (403"),
        ("sidekick-server-error", "the API failed with a server error (500"),
    ],
    ids=["400-prompt-too-long", "403-forbidden", "500-server-error"],
)
def test_api_errors_are_said_by_kind(
    agents: Agents, endings_mock: MockServer, tmp_path: Path, prompt: str, words: str
) -> None:
    ending, log = agents.run(config_for(tmp_path, endings_mock.base_url), prompt)
    assert ending.status is ProjectStatus.FAILED, log
    assert ending.note == f"failed: {words}" or ending.note.startswith(f"failed: {words}")


def test_a_refused_key_says_to_check_the_key_file(
    agents: Agents, endings_mock: MockServer, tmp_path: Path
) -> None:
    config = config_for(tmp_path, endings_mock.base_url, key="sk-ant-not-a-key-of-the-mock-000")
    ending, log = agents.run(config, "Say done.")
    assert ending.status is ProjectStatus.FAILED, log
    assert ending.note.startswith("failed: the API refused the key (401")
    assert "api.key_file" in ending.note


def test_spent_credit_is_said_as_spent_credit(agents: Agents, tmp_path: Path) -> None:
    with mock_server(SCENARIOS, budget_usd=0.000001) as server:
        config = config_for(tmp_path, server.base_url)
        first, log = agents.run(config, "Say done.")
        assert first.status is ProjectStatus.COMPLETE, log
        agents.runner.reap(KEY_OF_ALPHA)
        spent, log = agents.run(config, "Say done.", run_id="run-2")
    assert spent.status is ProjectStatus.FAILED, log
    assert spent.note.startswith("failed: the API account is out of credit (Credit balance")


def test_an_unreachable_api_is_said_as_unreachable(agents: Agents, tmp_path: Path) -> None:
    ending, log = agents.run(config_for(tmp_path, "http://127.0.0.1:9"), "Say done.")
    assert ending.status is ProjectStatus.FAILED, log
    assert ending.note.startswith("failed: the API could not be reached (API Error: Connection")


def test_an_option_claude_rejects_is_said_with_the_option(
    agents: Agents, endings_mock: MockServer, tmp_path: Path
) -> None:
    config = config_for(tmp_path, endings_mock.base_url)
    ending, log = agents.run(config, "Say done.", model="bogus-option")
    assert ending.status is ProjectStatus.FAILED, log
    assert ending.note == (
        "failed: the agent refused its command line (unknown option '--bogus'): "
        "fix the agent profile's command"
    )


def test_a_crash_is_said_with_its_signal(
    agents: Agents, endings_mock: MockServer, tmp_path: Path
) -> None:
    log_path = agents.start(config_for(tmp_path, endings_mock.base_url), "sidekick-slow")
    ids = wait_for(lambda: agent_lock.read_pids(log_path), what="the agent's pids")
    os.killpg(ids.agent_group, signal.SIGKILL)
    ending, log = agents.ending(log_path)
    assert ending.status is ProjectStatus.FAILED, log
    assert ending.note.startswith("failed: the agent was killed by SIGKILL (exit 137)")

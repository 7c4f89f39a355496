"""Any Next Action reaches the agent as data: from a row through build_launch and real tmux."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidekick.config import AgentProfile, Config, DaemonConfig
from sidekick.errors import RunnerError
from sidekick.launch import build_launch
from sidekick.models import Project, ProjectStatus
from sidekick.runners.base import LiveAgent
from sidekick.runners.tmux import TmuxRunner
from tests.runners.helpers import wait_for

# The default profile's way: the prompt on stdin, read by the agent.
READ_STDIN = ("sh", "-c", 'cat > got.txt; printf %s "$SIDEKICK_NEXT_ACTION" > env.txt')
# A script that quotes the field it is given as a positional argument.
QUOTE_ARGUMENT = ("sh", "-c", 'printf %s "$1" > got.txt', "sh", "{next_action}")

PROMPTS = {
    "tmux-refused-20000": "Refactor the login flow. " * 800,
    "argv-too-long-140000": "x" * 140_000,
    "markdown-list": "- fix the flaky login test\n- then update the changelog",
    "double-dash": "--help",
    "option-like": "--dangerously-skip-permissions do it",
    "other-scripts": "Исправить вход · 修复登录测试 · إصلاح · 🧪 tests",
    "shell-syntax": "$(touch pwned) `touch pwned2`; rm -rf nothing && echo 'it' \"ran\"",
    "tmux-syntax": "a ; b \\; c #{pane_id} {}",
    "ends-with-semicolon": "stop here;",
}


def project(name: str, next_action: str, model: str = "") -> Project:
    return Project(name, 1, ProjectStatus.PENDING, next_action=next_action, model=model)


def config_with(tmp_path: Path, **profiles: AgentProfile) -> Config:
    return Config(
        daemon=DaemonConfig(state_dir=tmp_path / "state"),
        agents={"default": AgentProfile(command=READ_STDIN, claude=False), **profiles},
    )


def run_once(runner: TmuxRunner, config: Config, row: Project, directory: Path) -> int:
    plan = build_launch(config, row, directory, run_id="run-1")
    runner.start(plan.spec)
    agent = wait_for(lambda: _finished(runner, row.key), timeout=20, what="the agent to end")
    assert agent.exit_code is not None
    return agent.exit_code


def _finished(runner: TmuxRunner, key: str) -> LiveAgent | None:
    agent = runner.list_agents().get(key)
    return agent if agent is not None and agent.finished else None


@pytest.mark.parametrize("name", list(PROMPTS))
def test_any_next_action_reaches_the_agent_on_stdin_unchanged(
    tmux_runner: TmuxRunner, tmp_path: Path, name: str
) -> None:
    prompt = PROMPTS[name]
    directory = tmp_path / "work"
    directory.mkdir()
    code = run_once(tmux_runner, config_with(tmp_path), project("Alpha", prompt), directory)
    assert code == 0
    assert (directory / "got.txt").read_text(encoding="utf-8") == prompt
    # Over one environment string's limit the field is only on stdin.
    in_env = prompt if len(prompt.encode()) < 128 * 1024 - 30 else ""
    assert (directory / "env.txt").read_text(encoding="utf-8") == in_env
    assert not (directory / "pwned").exists() and not (directory / "pwned2").exists()


@pytest.mark.parametrize("name", ["tmux-refused-20000", "shell-syntax", "markdown-list"])
def test_a_field_given_as_an_argument_passes_tmux_and_is_never_run(
    tmux_runner: TmuxRunner, tmp_path: Path, name: str
) -> None:
    directory = tmp_path / "work"
    directory.mkdir()
    config = config_with(tmp_path, quote=AgentProfile(command=QUOTE_ARGUMENT, claude=False))
    row = project("Alpha", PROMPTS[name], model="quote")
    assert run_once(tmux_runner, config, row, directory) == 0
    assert (directory / "got.txt").read_text(encoding="utf-8") == PROMPTS[name]
    assert not (directory / "pwned").exists()


def test_a_launch_linux_cannot_exec_is_refused_before_anything_starts(
    tmux_runner: TmuxRunner, tmp_path: Path
) -> None:
    config = config_with(tmp_path, quote=AgentProfile(command=QUOTE_ARGUMENT, claude=False))
    row = project("Alpha", PROMPTS["argv-too-long-140000"], model="quote")
    with pytest.raises(RunnerError) as caught:
        build_launch(config, row, tmp_path, run_id="run-1")
    message = str(caught.value)
    assert "'quote'" in message and "argument 4 is 140000 bytes" in message
    assert "stdin" in message
    assert tmux_runner.list_agents() == {}


def test_the_launch_file_holding_the_environment_is_private_and_removed_once_read(
    tmux_runner: TmuxRunner, tmp_path: Path
) -> None:
    directory = tmp_path / "work"
    directory.mkdir()
    row = project("Alpha", "hello")
    run_once(tmux_runner, config_with(tmp_path), row, directory)
    logs = tmp_path / "state" / "logs"
    assert not list(logs.rglob("*.launch.json"))
    (stdin_file,) = logs.rglob("*.stdin")
    assert stdin_file.stat().st_mode & 0o777 == 0o600


def test_text_no_encoding_can_carry_reaches_the_agent_with_a_mark_instead(
    tmux_runner: TmuxRunner, tmp_path: Path
) -> None:
    directory = tmp_path / "work"
    directory.mkdir()
    row = project("Alpha", "fix the caf\ud800 menu and the caf\udce9 one\x00")
    assert run_once(tmux_runner, config_with(tmp_path), row, directory) == 0
    assert (directory / "got.txt").read_bytes() == b"fix the caf? menu and the caf? one?"
    assert (directory / "env.txt").read_bytes() == b"fix the caf? menu and the caf? one?"

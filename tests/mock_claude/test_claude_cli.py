"""The real Claude Code CLI against the mock: tools really run, failures end fast.

Skips when ``claude`` is not on PATH (fails under CI=true); install it with
``.ci/install-claude-code.sh``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest

from sidekick import claude_code
from tests.claude_cli import claude_path
from tests.mockapi import MockServer, mock_server

pytestmark = pytest.mark.claude

KEY = "sk-ant-mock-cli-test-0123456789abcdef"
DEMO_SCENARIOS = Path(
    str(resources.files("sidekick.mock_claude") / "scenarios" / "agent-demo.yaml")
)
RUN_TIMEOUT = 120


@pytest.fixture(scope="module")
def claude_binary() -> str:
    return claude_path()


@pytest.fixture(scope="module")
def demo_mock() -> Iterator[MockServer]:
    with mock_server(DEMO_SCENARIOS, api_keys=[KEY]) as server:
        yield server


@dataclass(frozen=True)
class Run:
    exit_code: int
    seconds: float
    output: str
    result: claude_code.AgentResult | None


def run_agent(
    tmp_path: Path,
    base_url: str,
    prompt: str,
    *,
    max_retries: int = 2,
    extra: tuple[str, ...] = (),
) -> Run:
    """One headless run, launched the way the daemon launches it."""
    project = tmp_path / "project"
    project.mkdir(parents=True, exist_ok=True)
    config_dir = tmp_path / "claude-config"
    claude_code.prepare_config_dir(config_dir, api_key=KEY, projects=[project])
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8"}
    env.update(claude_code.agent_environment(config_dir, base_url, KEY, max_retries=max_retries))
    began = time.monotonic()
    done = subprocess.run(
        [*claude_code.DEFAULT_COMMAND, *extra],
        cwd=project,
        env=env,
        input=prompt,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    seconds = time.monotonic() - began
    output = done.stdout + done.stderr
    return Run(done.returncode, seconds, output, claude_code.parse_result(done.stdout))


def test_cli_writes_edits_and_runs_a_command_through_the_scenario(
    claude_binary: str, demo_mock: MockServer, tmp_path: Path
) -> None:
    run = run_agent(tmp_path, demo_mock.base_url, "Please do the sidekick-demo task.")
    assert run.exit_code == 0, run.output
    project = tmp_path / "project"
    assert (project / "NOTES.md").read_text(encoding="utf-8") == "# Notes\n\nstatus: done\n"
    assert (project / "NOTES.count").read_text(encoding="utf-8").split()[0] == "3"
    result = run.result
    assert result is not None, run.output
    assert not result.is_error
    assert result.session_id
    assert result.num_turns == 4
    assert result.total_cost_usd is not None and result.total_cost_usd > 0
    assert result.input_tokens and result.output_tokens
    assert result.result == "NOTES.md is written and marked done."
    steps = [
        line.split("step=")[1].split()[0]
        for line in demo_mock.log().splitlines()
        if "scenario=write-edit-run" in line
    ]
    assert steps[-4:] == ["0", "1", "2", "3"]


def test_resumed_session_continues_with_a_new_prompt(
    claude_binary: str, demo_mock: MockServer, tmp_path: Path
) -> None:
    first = run_agent(tmp_path, demo_mock.base_url, "Say hello.")
    assert first.result is not None and first.exit_code == 0, first.output
    again = run_agent(
        tmp_path,
        demo_mock.base_url,
        "Say hello once more.",
        extra=claude_code.resume_arguments(first.result.session_id),
    )
    assert again.exit_code == 0, again.output
    assert again.result is not None
    assert again.result.result.startswith("Hello from the mock Claude API")


def test_overloaded_storm_ends_the_run_fast_with_the_reason(
    claude_binary: str, demo_mock: MockServer, tmp_path: Path
) -> None:
    run = run_agent(tmp_path, demo_mock.base_url, "sidekick-storm", max_retries=1)
    assert run.exit_code != 0
    assert run.seconds < 30
    assert run.result is not None, run.output
    assert run.result.is_error
    assert run.result.api_error_status == 529
    assert "529" in run.result.api_error and "overloaded" in run.result.api_error.lower()


def test_spent_credit_ends_the_run_with_the_reason(claude_binary: str, tmp_path: Path) -> None:
    with mock_server(DEMO_SCENARIOS, budget_usd=0.000001) as server:
        spender = run_agent(tmp_path / "a", server.base_url, "Say hello.")
        refused = run_agent(tmp_path / "b", server.base_url, "Say hello.")
    assert spender.exit_code == 0, spender.output
    assert refused.exit_code != 0
    assert refused.result is not None, refused.output
    assert refused.result.api_error_status == 400
    assert "credit balance is too low" in refused.result.api_error.lower()

"""End to end: the daemon runs the real Claude Code CLI in tmux against the mock Claude API."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from sidekick.daemon import Daemon
from sidekick.models import ProjectStatus
from sidekick.state import StateStore
from tests.daemon.world import World, make_world
from tests.mockapi import MockServer, mock_server
from tests.needs import missing
from tests.polling import wait_until

pytestmark = pytest.mark.claude

KEY = "sk-ant-mock-e2e-0123456789abcdef"
SCENARIOS = Path(str(resources.files("sidekick.mock_claude") / "scenarios" / "agent-demo.yaml"))


@pytest.fixture
def mock() -> Iterator[MockServer]:
    if shutil.which("claude") is None:
        missing("Claude Code CLI `claude` not on PATH (run .ci/install-claude-code.sh)")
    with mock_server(SCENARIOS, api_keys=[KEY]) as server:
        yield server


@pytest.fixture
def world(tmp_path: Path, mock: MockServer) -> Iterator[World]:
    key_file = tmp_path / "secrets" / "anthropic_api_key"
    key_file.parent.mkdir()
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o400)
    made = make_world(
        tmp_path,
        ["writer", "stormy"],
        [],
        rows=[
            "writer,1,Pending,,,Please do the sidekick-demo task.,,,",
            "stormy,2,Pending,,,sidekick-storm,,,",
        ],
        agents={"default": {"claude": True}},
        api={"base_url": mock.base_url, "key_file": str(key_file)},
    )
    yield made
    made.kill_tmux()


def test_claude_code_agents_complete_and_fail_as_the_api_says(world: World) -> None:
    daemon = Daemon(world.config())

    def settled() -> bool:
        daemon.run_once()
        rows = world.rows()
        return (
            rows["writer"].status is ProjectStatus.COMPLETE
            and rows["stormy"].status is ProjectStatus.FAILED
        )

    wait_until(settled, timeout=180, step=0.2)

    project = world.root / "projects" / "writer"
    assert (project / "NOTES.md").read_text() == "# Notes\n\nstatus: done\n"
    assert (project / "NOTES.count").read_text().split()[0] == "3", "the Bash step ran"
    store = StateStore(world.state / "sidekick.db")
    (writer,) = store.runs("writer")
    assert writer.state == "finished" and writer.exit_code == 0
    assert writer.session_id and writer.turns == 4
    assert writer.cost_usd is not None and writer.cost_usd > 0
    assert writer.input_tokens and writer.output_tokens
    assert "complete (4 turns, $" in world.rows()["writer"].last_update

    (stormy,) = store.runs("stormy")
    assert stormy.exit_code != 0 and "529" in stormy.reason
    assert "529" in world.rows()["stormy"].last_update
    assert "overloaded" in world.rows()["stormy"].last_update.lower()
    assert store.costs()["writer"] == pytest.approx(writer.cost_usd)

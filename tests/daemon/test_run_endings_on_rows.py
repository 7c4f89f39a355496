"""How a run ended reaches the row and ``sidekick runs`` in words, through the daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sidekick.daemon import Daemon
from sidekick.models import ProjectStatus
from tests.daemon.world import World, make_world
from tests.polling import wait_until

# The result lines the real CLI prints for these endings (see tests/runners/test_claude_endings.py).
DENIED = {
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "num_turns": 3,
    "total_cost_usd": 0.1453,
    "result": "Tests pass and the branch is pushed.",
    "permission_denials": [
        {"tool_name": "Bash", "tool_input": {"command": "python3 -m pytest -q"}},
        {"tool_name": "Bash", "tool_input": {"command": "git push origin HEAD"}},
    ],
}
MAX_TURNS = {
    "type": "result",
    "subtype": "error_max_turns",
    "is_error": True,
    "num_turns": 2,
    "terminal_reason": "max_turns",
    "errors": ["Reached maximum number of turns (1)"],
}


def ended_with(worlds: list[World], tmp_path: Path, result: dict[str, object], code: int) -> World:
    """A project whose agent prints ``result`` as its last line and exits with ``code``."""
    world = make_world(
        tmp_path,
        ["alpha"],
        ["sh", "-c", f"cat result.json; exit {code}"],
        rows=["alpha,1,Pending,,,Run the tests and push,,,"],
    )
    worlds.append(world)
    (tmp_path / "projects" / "alpha" / "result.json").write_text(json.dumps(result) + "\n")
    daemon = Daemon(world.config())

    def settled() -> bool:
        daemon.run_once()
        return world.rows()["alpha"].status not in (
            ProjectStatus.PENDING,
            ProjectStatus.IN_PROGRESS,
        )

    wait_until(settled, timeout=20, step=0.05)
    return world


def runs_output(world: World) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "sidekick", "runs", "alpha", "--config", str(world.config_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_a_run_with_denied_tool_calls_blocks_its_row_with_the_calls_named(
    worlds: list[World], tmp_path: Path
) -> None:
    world = ended_with(worlds, tmp_path, DENIED, 0)
    row = world.rows()["alpha"]
    assert row.status is ProjectStatus.BLOCKED
    words = "complete · 2 tool calls denied (Bash: python3 -m pytest -q; git push origin HEAD)"
    assert words in row.last_update
    assert "{" not in row.last_update
    assert words in runs_output(world)


def test_the_turn_limit_is_words_on_the_row_not_raw_json(
    worlds: list[World], tmp_path: Path
) -> None:
    world = ended_with(worlds, tmp_path, MAX_TURNS, 1)
    row = world.rows()["alpha"]
    assert row.status is ProjectStatus.FAILED
    assert "stopped at the turn limit after 2 turns" in row.last_update
    assert "{" not in row.last_update
    assert "stopped at the turn limit" in runs_output(world)

"""The example list compose starts with does what its rows say, with the real
Claude Code CLI against the mock API that compose runs beside the orchestrator.

A new user's first run is this list: an agent that did nothing and was called
Complete would be the first thing they see.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import yaml

from tests.mock_claude import test_claude_cli
from tests.mock_claude.test_claude_cli import KEY, run_agent
from tests.mockapi import MockServer, mock_server

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
COMPOSE_FILE = REPO / "docker-compose.yml"

pytestmark = [
    pytest.mark.claude,
    # The test image holds tests/ alone: the build context leaves data/ out, as it may
    # hold a person's list. The checkout always has both, so CI runs these.
    pytest.mark.skipif(
        not (DATA / "priorities.example.csv").is_file() or not COMPOSE_FILE.is_file(),
        reason="the example list and docker-compose.yml are not here (the test image)",
    ),
]
SCENARIOS_IN_IMAGE = "/etc/mock-claude/scenarios/"

claude_binary = test_claude_cli.claude_binary


def compose_mock_scenarios() -> Path:
    """The packaged scenario file compose's mock-claude service is told to load."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    chosen = str(compose["x-mock-claude"]["environment"]["MOCK_CLAUDE_SCENARIOS"])
    assert chosen.startswith(SCENARIOS_IN_IMAGE), chosen
    name = chosen.removeprefix(SCENARIOS_IN_IMAGE)
    return Path(str(resources.files("sidekick.mock_claude") / "scenarios" / name))


@pytest.fixture(scope="module")
def compose_mock() -> Iterator[MockServer]:
    with mock_server(compose_mock_scenarios(), api_keys=[KEY]) as server:
        yield server


def pending_rows() -> list[dict[str, str]]:
    with (DATA / "priorities.example.csv").open(encoding="utf-8", newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["Status"] == "Pending"]


def test_the_example_list_has_a_pending_demo_row() -> None:
    assert [row["Project"] for row in pending_rows()] == ["demo"]


def test_the_demo_row_makes_the_real_cli_write_notes_with_a_one_line_summary(
    claude_binary: str, compose_mock: MockServer, tmp_path: Path
) -> None:
    (row,) = pending_rows()
    shutil.copytree(DATA / "projects" / row["Project"], tmp_path / "project")

    run = run_agent(tmp_path, compose_mock.base_url, row["Next Action"])

    assert run.exit_code == 0, run.output
    notes = (tmp_path / "project" / "NOTES.md").read_text(encoding="utf-8")
    assert len(notes.splitlines()) == 1 and "demo" in notes
    assert run.result is not None and not run.result.is_error
    assert "scenario=write-notes-summary" in compose_mock.log()

"""The daemon's part: a Complete run's row says what is not deployed, and the opt-in auto deploy.

The agent is the real Claude Code CLI against the project's mock Claude API, which answers
with tool calls (tests/production/scenarios.yaml) that write VERSION and commit it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidekick.daemon import Daemon
from sidekick.models import ProjectStatus
from tests.daemon.world import HEADER, World
from tests.mockapi import MockServer, mock_server
from tests.needs import missing
from tests.polling import wait_until
from tests.production.fixture import SECRET, ProdApp

pytestmark = pytest.mark.claude

KEY = "sk-ant-mock-prod-0123456789abcdef"
SCENARIOS = Path(__file__).with_name("scenarios.yaml")
PASS_GATE = ["python3", "-c", "print('12 passed')"]
FAIL_GATE = ["python3", "-c", "import sys; print('2 failed, 10 passed'); sys.exit(1)"]


@pytest.fixture(scope="module")
def mock() -> Iterator[MockServer]:
    if shutil.which("claude") is None:
        missing("Claude Code CLI `claude` not on PATH (run .ci/install-claude-code.sh)")
    with mock_server(SCENARIOS, api_keys=[KEY]) as server:
        yield server


@pytest.fixture
def worlds(
    prod_app: ProdApp, mock: MockServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[World]]:
    """Worlds whose agents end with the test; the daemon here builds images as the app does."""
    for name, value in prod_app.env().items():
        monkeypatch.setenv(name, value)
    made: list[World] = []
    yield made
    for world in made:
        world.kill_tmux()


def _world(
    app: ProdApp, mock: MockServer, worlds: list[World], gate: list[str], auto: str = "on_complete"
) -> World:
    """The fixture app's workspace as a project whose Claude Code agent changes VERSION and
    commits."""
    key_file = app.root / "secrets" / "anthropic_api_key"
    if not key_file.exists():
        key_file.parent.mkdir()
        key_file.write_text(KEY + "\n")
        key_file.chmod(0o400)
    deploy = {"wait_timeout": 30, "auto": auto, "gate": gate}
    production = {"path": str(app.production), "compose_project": app.compose_project}
    settings = {
        "projects": {
            app.name: {
                "directory": str(app.workspace),
                "production": {**production, "deploy": deploy},
            }
        },
        "priority_source": {"type": "csv", "csv": {"path": str(app.root / "priorities.csv")}},
        "daemon": {"state_dir": str(app.root / "state"), "reconcile_interval": 60},
        "tmux": {"socket": str(app.root / "tmux.sock")},
        "agents": {"default": {"claude": True}},
        "api": {"base_url": mock.base_url, "key_file": str(key_file)},
    }
    app.config.write_text(json.dumps(settings))
    world = World(app.root, app.config)
    (app.root / "priorities.csv").write_text(
        HEADER + f"{app.name},1,Pending,,,Please do the sidekick-bump-version task.,,,\n"
    )
    worlds.append(world)
    return world


def _until_row_says(world: World, name: str, words: str) -> str:
    daemon = Daemon(world.config())

    def said() -> str:
        daemon.run_once()
        row = world.rows()[name]
        return row.last_update if words in row.last_update else ""

    return wait_until(said, timeout=120, step=0.2, what=f"the row says {words!r}")


def test_a_complete_run_says_how_many_files_are_not_deployed(
    prod_app: ProdApp, mock: MockServer, worlds: list[World]
) -> None:
    world = _world(prod_app, mock, worlds, PASS_GATE, auto="off")
    text = _until_row_says(world, prod_app.name, "not deployed")
    assert "complete (3 turns, $" in text and text.endswith("· 1 file not deployed")
    assert world.rows()[prod_app.name].status is ProjectStatus.COMPLETE
    assert prod_app.version() == "1"


def test_auto_deploy_after_a_complete_run_when_the_gate_passes(
    prod_app: ProdApp, mock: MockServer, worlds: list[World]
) -> None:
    world = _world(prod_app, mock, worlds, PASS_GATE)
    text = _until_row_says(world, prod_app.name, "deployed r1")
    assert prod_app.version() == "2"
    assert SECRET not in text
    history = prod_app.sidekick("history", prod_app.name)
    assert "sidekick daemon" in history.stdout and "auto-deploy after" in history.stdout


def test_no_deploy_when_the_gate_fails_and_the_row_says_why(
    prod_app: ProdApp, mock: MockServer, worlds: list[World]
) -> None:
    world = _world(prod_app, mock, worlds, FAIL_GATE)
    text = _until_row_says(world, prod_app.name, "gate failed")
    assert "not deployed: gate failed (exit 1: 2 failed, 10 passed)" in text
    assert prod_app.version() == "1"


def test_an_auto_deploy_that_fails_health_is_rolled_back_and_the_row_says_so(
    prod_app: ProdApp, mock: MockServer, worlds: list[World]
) -> None:
    (prod_app.workspace / "health.txt").write_text("broken\n")
    prod_app.commit("break the health check")
    world = _world(prod_app, mock, worlds, PASS_GATE)
    config = json.loads(prod_app.config.read_text())
    config["projects"][prod_app.name]["production"]["deploy"]["wait_timeout"] = 4
    prod_app.config.write_text(json.dumps(config))
    text = _until_row_says(world, prod_app.name, "deploy failed")
    assert "deploy failed, back on the release before it: health check timed out" in text
    assert prod_app.version() == "1"

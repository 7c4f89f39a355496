"""insight.investigate: auto on the real engine with the real Claude Code CLI and the mock API."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sidekick.config import load_config
from sidekick.daemon import Daemon
from sidekick.insight.auto import AutoInvestigations, auto_investigations
from sidekick.insight.investigate import investigation_runner
from sidekick.state import StateStore
from tests.daemon.world import make_world
from tests.insight.conftest import MOCK_KEY
from tests.mockapi import MockServer
from tests.polling import wait_until

pytestmark = [pytest.mark.claude, pytest.mark.docker]


def write_config(root: Path, mock: MockServer, containers: list[str], mode: str) -> Path:
    key_file = root / "anthropic_api_key"
    key_file.write_text(MOCK_KEY + "\n")
    socket = Path("/tmp") / f"sk-auto-{uuid.uuid4().hex[:8]}" / "sidekick.sock"
    socket.parent.mkdir()
    (root / "shop").mkdir()
    settings = {
        "daemon": {"state_dir": str(root / "state")},
        "tmux": {"socket": str(socket)},
        "api": {"base_url": mock.base_url, "key_file": str(key_file)},
        "projects": {
            "shop": {"directory": str(root / "shop"), "production": {"containers": containers}}
        },
        "insight": {"investigate": mode},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.fixture
def auto(
    tmp_path: Path, mock: MockServer, unhealthy: str, oom_killed: str, restart_loop: str
) -> Iterator[AutoInvestigations]:
    path = write_config(tmp_path, mock, [unhealthy, oom_killed, restart_loop], "auto")
    config = load_config(path)
    yield auto_investigations(config)
    investigation_runner(config).end_all()


def test_each_incident_is_investigated_once_and_never_two_at_once(
    auto: AutoInvestigations, unhealthy: str, oom_killed: str, restart_loop: str
) -> None:
    found: list[list[str]] = []
    first = threading.Thread(target=lambda: found.append(auto.tick()))
    first.start()
    wait_until(auto._running.locked, what="the first check under way")
    assert auto.tick() == [], "a second check started an investigation while one ran"
    first.join(timeout=240)
    assert sorted(found[0]) == sorted(
        [f"{unhealthy}|unhealthy", f"{oom_killed}|OOM-killed", f"{restart_loop}|restart loop"]
    )
    assert auto.tick() == [], "the same incidents were investigated again"

    store = StateStore(auto.config.daemon.state_dir / "sidekick.db")
    try:
        for name in (unhealthy, oom_killed, restart_loop):
            (run,) = store.runs(name)
            assert run.outcome == "Investigated" and run.exit_code == 0
            assert run.reason.startswith("investigation: Diagnosis: the health check fails")
    finally:
        store.close()
    assert set(auto.book.read()) == set(found[0])


def test_with_investigate_off_nothing_is_investigated(
    tmp_path: Path, mock: MockServer, unhealthy: str
) -> None:
    config = load_config(write_config(tmp_path, mock, [unhealthy], "off"))
    assert auto_investigations(config).tick() == []
    assert not (config.daemon.state_dir / "investigations").exists()


def test_the_daemon_investigates_an_unhealthy_production_container_by_itself(
    tmp_path: Path, mock: MockServer, unhealthy: str
) -> None:
    key_file = tmp_path / "anthropic_api_key"
    key_file.write_text(MOCK_KEY + "\n")
    world = make_world(
        tmp_path,
        ["shop"],
        ["sleep", "1"],
        api={"base_url": mock.base_url, "key_file": str(key_file)},
        insight={"investigate": "auto", "check_interval": 1},
    )
    settings = yaml.safe_load(world.config_path.read_text())
    shop = {"directory": settings["projects"]["shop"], "production": {"containers": [unhealthy]}}
    settings["projects"]["shop"] = shop
    world.config_path.write_text(yaml.safe_dump(settings))
    config = world.config()
    daemon = Daemon(config)
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        store = StateStore(config.daemon.state_dir / "sidekick.db")
        try:
            runs = wait_until(lambda: store.runs(unhealthy), 120, what="an investigation run")
        finally:
            store.close()
    finally:
        daemon.request_stop()
        runner.join(60)
        investigation_runner(config).end_all()
        world.kill_tmux()
    assert len(runs) == 1 and runs[0].run_id.startswith("inv-"), "the reconciler adopted it"
    assert runs[0].outcome == "Investigated"
    assert runs[0].reason.startswith("investigation: Diagnosis:")

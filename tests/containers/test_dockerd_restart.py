"""dockerd restarted under a running daemon: degraded while it is gone, healthy again after.

Restarting the engine stops every container on it, so this runs only when
SIDEKICK_TEST_RESTART_DOCKERD=1 says nothing else uses the engine (CI sets it;
run it alone, last), and it refuses when containers not made by these tests run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from docker.api.client import APIClient

from sidekick.health import heartbeat_path, read_heartbeat, verdict
from sidekick.models import ProjectStatus, agent_key
from tests.containers.helpers import TEST_LABEL
from tests.containers.test_daemon_container import container_daemon, container_world, tick_until
from tests.needs import missing
from tests.polling import wait_until

RESTART_ENV = "SIDEKICK_TEST_RESTART_DOCKERD"


@dataclass(frozen=True)
class Dockerd:
    pid: int
    argv: list[str]
    log: str | None
    cwd: str


def find_dockerd() -> Dockerd | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "dockerd":
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            log = os.readlink(entry / "fd" / "1")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        return Dockerd(int(entry.name), [a.decode() for a in argv if a], _file_or_none(log), cwd)
    return None


def _file_or_none(target: str) -> str | None:
    return target if target.startswith("/") and Path(target).is_file() else None


def others_running(docker_api: APIClient) -> list[str]:
    """Running containers these tests did not make: a restart would stop them."""
    return [
        row["Names"][0]
        for row in docker_api.containers()
        if TEST_LABEL not in row["Labels"] and "sidekick.instance" not in row["Labels"]
    ]


@pytest.fixture
def dockerd(docker_api: APIClient) -> Dockerd:
    if os.environ.get(RESTART_ENV) != "1":
        missing(f"restarts the Docker engine: set {RESTART_ENV}=1 where nothing else uses it")
    found = find_dockerd()
    if found is None or os.geteuid() != 0:
        missing("dockerd is not a local process this user may restart")
    others = others_running(docker_api)
    if others:
        missing(f"other containers run on this engine ({', '.join(others)}): not restarting")
    return found


def stop_dockerd(process: Dockerd) -> None:
    os.kill(process.pid, signal.SIGTERM)
    wait_until(lambda: not Path(f"/proc/{process.pid}").exists(), timeout=60, step=0.2)


def start_dockerd(process: Dockerd) -> None:
    """Start it again the way it ran, detached so it outlives the tests."""
    with open(process.log or os.devnull, "ab") as log:
        subprocess.Popen(
            process.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=process.cwd,
            start_new_session=True,
        )


def health(state_dir: Path) -> tuple[bool, str]:
    return verdict(read_heartbeat(heartbeat_path(state_dir)), max_age=60)


def test_dockerd_restart_makes_the_daemon_degraded_then_healthy_with_the_agent_kept(
    dockerd: Dockerd, base_image: str, instance: str, tmp_path: Path
) -> None:
    name = f"restart-{uuid.uuid4().hex[:6]}"
    agent = ["sh", "-c", "while [ ! -e go ]; do sleep 0.1; done; echo finished"]
    world = container_world(
        tmp_path,
        [name],
        agent,
        base_image,
        instance,
        {"restart_policy": "on-failure"},
        rows=[f"{name},1,Pending,,,,,,"],
    )
    daemon, store = container_daemon(world.config())
    runner = daemon.parts.runner
    tick_until(daemon, lambda: world.rows()[name].status is ProjectStatus.IN_PROGRESS)
    assert health(world.state)[0]
    (run,) = store.runs(name)

    stop_dockerd(dockerd)
    try:
        daemon.run_once()  # must not raise: the daemon stays up, degraded
        healthy, why = health(world.state)
        assert not healthy and "Docker engine" in why
        assert not runner.ping().ok  # type: ignore[attr-defined]
    finally:
        start_dockerd(dockerd)
    wait_until(lambda: runner.ping().ok, timeout=90, step=0.5)  # type: ignore[attr-defined]
    tick_until(daemon, lambda: health(world.state)[0])
    # The shutdown killed the agent (exit 143); on-failure brought it back, the same run.
    assert agent_key(name) in runner.list_agents()
    assert store.active_runs()[agent_key(name)].run_id == run.run_id
    (tmp_path / "projects" / name / "go").touch()
    tick_until(daemon, lambda: world.rows()[name].status is ProjectStatus.COMPLETE, timeout=60)

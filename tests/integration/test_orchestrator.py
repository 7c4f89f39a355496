"""`docker compose up -d orchestrator` on a real engine: health, the list, crashes, stopping.

Each test brings up its own compose project (orchestrator and mock-claude)
over a data directory of its own, edits the list from the host the way editors
do, and looks inside the container through the Docker SDK.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from sidekick.models import agent_key
from tests.integration.compose import (
    Compose,
    container_of,
    exec_text,
    health,
    heartbeat,
    runs_of,
    tmux_sessions,
    wait_healthy,
)
from tests.integration.world import World
from tests.needs import missing
from tests.polling import wait_until

logger = logging.getLogger(__name__)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(3600)]

ACTIVE = {"starting", "running", "stopping"}
GRACE_PERIOD = 30.0
SUITE_TIMEOUT = 3000.0


@dataclass(frozen=True)
class Running:
    compose: Compose
    container: Container
    world: World

    def restarts(self) -> int:
        self.container.reload()
        return int(self.container.attrs["RestartCount"])


@pytest.fixture
def orchestrator(
    orchestrator_project: Compose, world: World, docker_client: docker.DockerClient
) -> Iterator[Running]:
    orchestrator_project.up("orchestrator")
    container = container_of(docker_client, orchestrator_project.project, "orchestrator")
    try:
        wait_healthy(container, timeout=90)
    except AssertionError:
        logger.error("orchestrator logs:\n%s", container.logs(tail=50).decode("utf-8", "replace"))
        raise
    yield Running(orchestrator_project, container, world)


def rows(world: World) -> dict[str, dict[str, str]]:
    text = world.priorities.read_text(encoding="utf-8")
    return {row["Project"]: row for row in csv.DictReader(io.StringIO(text))}


def status_of(world: World, project: str) -> str:
    return rows(world).get(project, {}).get("Status", "")


def start_sleeper(running: Running, name: str) -> int:
    """A Pending row whose agent only sleeps; returns its pane pid once it runs."""
    running.world.add_project(name)
    running.world.save_by_rename(f"{name},1,Pending,,,wait,,no,sleeper\n")
    key = agent_key(name)
    return wait_until(lambda: tmux_sessions(running.container).get(key, 0), 60, f"{key} running")


def host_pid_of(container: Container) -> int:
    """The container's main process (tini) as this host sees it, or skip where it cannot.

    Under Docker Desktop the engine's pids belong to its VM: a pid here would be
    some other process, so it is checked before anything is signalled.
    """
    pid = int(container.attrs["State"]["Pid"])
    proc = Path("/proc") / str(pid)
    try:
        cmdline = (proc / "cmdline").read_bytes()
        cgroup = (proc / "cgroup").read_text(encoding="utf-8")
    except OSError as exc:
        missing(f"the container's main process is not visible from this host ({exc})")
    assert container.id is not None
    if b"tini" not in cmdline or container.id not in cgroup:
        missing(f"pid {pid} here is not the container's main process (engine in a VM?)")
    return pid


def active_runs(running: Running, name: str) -> list[dict[str, Any]]:
    return [run for run in runs_of(running.container, name) if run["state"] in ACTIVE]


def last_reconcile(running: Running) -> float:
    return float(heartbeat(running.container).get("last_reconcile_at") or 0.0)


def reconcile_after(running: Running, moment: float) -> float:
    """The time of the first reconcile the daemon finishes after `moment`."""
    return wait_until(
        lambda: (stamp := last_reconcile(running)) > moment and stamp, 60, "a reconcile"
    )


def reconciles_after(running: Running, moment: float) -> None:
    """Two reconciles after `moment`, so that one surely began after it."""
    reconcile_after(running, reconcile_after(running, moment))


def test_orchestrator_becomes_healthy_with_the_mock_api_beside_it(
    orchestrator: Running, docker_client: docker.DockerClient
) -> None:
    assert health(orchestrator.container) == "healthy"
    mock = container_of(docker_client, orchestrator.compose.project, "mock-claude")
    wait_healthy(mock, timeout=60)
    code, text = exec_text(
        orchestrator.container,
        "python3",
        "-c",
        "import urllib.request as u;"
        " print(u.urlopen('http://mock-claude:8080/health', timeout=5).status)",
    )
    assert (code, text.strip()) == (0, "200")


def test_secrets_are_read_only_files_never_in_the_environment(orchestrator: Running) -> None:
    code, key = exec_text(orchestrator.container, "cat", "/run/secrets/anthropic_api_key")
    assert code == 0 and key.strip()
    env = orchestrator.container.attrs["Config"]["Env"]
    assert not any(key.strip() in item for item in env)
    code, _ = exec_text(orchestrator.container, "sh", "-c", ": > /run/secrets/anthropic_api_key")
    assert code != 0, "the API key secret is writable"
    code, _ = exec_text(
        orchestrator.container, "test", "-r", "/run/secrets/sheets_credentials.json"
    )
    assert code == 0


def test_a_host_rename_save_runs_a_claude_agent_and_the_row_turns_complete_owned_by_the_host_user(
    orchestrator: Running,
) -> None:
    world = orchestrator.world
    world.add_project("alpha")
    world.save_by_rename("alpha,1,Pending,,,Say hello,,no,default\n")
    wait_until(lambda: status_of(world, "alpha") == "Complete", 180, "alpha Complete on the host")
    assert rows(world)["alpha"]["Agent"] == agent_key("alpha")
    owner = world.priorities.stat()
    assert (owner.st_uid, owner.st_gid) == (os.getuid(), os.getgid())
    (run,) = runs_of(orchestrator.container, "alpha")
    assert run["command"][0] == "claude"
    assert run["exit_code"] == 0


def test_a_crash_of_the_main_process_brings_the_container_back_healthy_without_a_duplicate_agent(
    orchestrator: Running,
) -> None:
    start_sleeper(orchestrator, "steady")
    restarts = orchestrator.restarts()
    main_pid = host_pid_of(orchestrator.container)
    os.kill(main_pid, signal.SIGKILL)  # a crash, unlike `docker kill` (a manual stop)
    wait_until(lambda: orchestrator.restarts() > restarts, 60, "the container restarted")
    wait_healthy(orchestrator.container, timeout=90)
    key = agent_key("steady")
    wait_until(lambda: key in tmux_sessions(orchestrator.container), 60, f"{key} running again")
    reconciles_after(orchestrator, time.time())
    assert list(tmux_sessions(orchestrator.container)) == [key]
    runs = runs_of(orchestrator.container, "steady")
    assert [r["state"] in ACTIVE for r in runs].count(True) == 1, runs
    assert any(r["state"] == "interrupted" for r in runs), "the killed run was not recorded"
    assert orchestrator.restarts() == restarts + 1


def test_the_daemon_killed_inside_is_restarted_without_touching_the_agents(
    orchestrator: Running,
) -> None:
    pane = start_sleeper(orchestrator, "survivor")
    (run,) = active_runs(orchestrator, "survivor")
    daemon_pid = int(heartbeat(orchestrator.container)["pid"])
    started_at = orchestrator.container.attrs["State"]["StartedAt"]
    code, text = exec_text(
        orchestrator.container, "sh", "-c", 'kill -9 "$1"', "sh", str(daemon_pid)
    )
    assert code == 0, text
    wait_until(
        lambda: heartbeat(orchestrator.container).get("pid") not in (None, daemon_pid),
        60,
        "a new daemon's heartbeat",
    )
    wait_healthy(orchestrator.container, timeout=60)
    reconciles_after(orchestrator, time.time())
    assert tmux_sessions(orchestrator.container) == {agent_key("survivor"): pane}
    assert [r["run_id"] for r in active_runs(orchestrator, "survivor")] == [run["run_id"]]
    orchestrator.container.reload()
    assert orchestrator.container.attrs["State"]["StartedAt"] == started_at


def test_compose_stop_is_graceful_within_the_grace_period(
    orchestrator: Running, docker_client: docker.DockerClient
) -> None:
    start_sleeper(orchestrator, "stopper")
    since = int(time.time()) - 1
    started = time.monotonic()
    orchestrator.compose.run_cli("stop", "orchestrator")
    took = time.monotonic() - started
    until = int(time.time()) + 1
    events = docker_client.events(
        since=since, until=until, decode=True, filters={"container": orchestrator.container.id}
    )
    signals = [e["Actor"]["Attributes"].get("signal") for e in events if e.get("Action") == "kill"]
    assert signals and "9" not in signals, f"kill signals sent by the engine: {signals}"
    assert took < GRACE_PERIOD
    orchestrator.container.reload()
    assert orchestrator.container.attrs["State"]["ExitCode"] == 0


def test_the_suite_passes_in_the_test_container(project: Compose) -> None:
    result = project.run("test", timeout=SUITE_TIMEOUT)
    tail = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, tail
    assert " passed" in result.stdout.splitlines()[-1], tail

"""The daemon with a ``runner: container`` profile against the real engine."""

from __future__ import annotations

import random
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from docker.api.client import APIClient

from sidekick.config import Config
from sidekick.containers.engine import ContainerEngine
from sidekick.daemon import Daemon, Parts
from sidekick.models import ProjectStatus, agent_key, slugify
from sidekick.priorities.choose import build_source
from sidekick.runners.container import ContainerRunner
from sidekick.state import StateStore
from tests.daemon.world import World, make_world
from tests.polling import wait_until

P = ProjectStatus

# Builds the daemon the way the lead's build_parts will once it picks the runner
# from the profile; until then this keeps the test independent of that wiring.
DAEMON_SCRIPT = """
import sys
from sidekick.config import load_config
from sidekick.daemon import Daemon, Parts
from sidekick.priorities.choose import build_source
from sidekick.runners.container import ContainerRunner
from sidekick.state import StateStore
config = load_config(sys.argv[1], environ={})
store = StateStore(config.daemon.state_dir / "sidekick.db")
Daemon(config, Parts(build_source(config), ContainerRunner.from_config(config), store)).run()
"""


def container_world(
    tmp_path: Path,
    names: list[str],
    command: list[str],
    image: str,
    instance: str,
    profile_extra: dict[str, Any] | None = None,
    **kw: Any,
) -> World:
    profile = {"runner": "container", "image": image, "command": command, "claude": False}
    profile.update(profile_extra or {})
    return make_world(
        tmp_path,
        names,
        command,
        agents={"default": profile},
        containers={"instance": instance},
        **kw,
    )


def container_daemon(config: Config) -> tuple[Daemon, StateStore]:
    store = StateStore(config.daemon.state_dir / "sidekick.db")
    parts = Parts(build_source(config), ContainerRunner.from_config(config), store)
    return Daemon(config, parts), store


def tick_until(daemon: Daemon, condition: Any, timeout: float = 30.0) -> None:
    def ticked() -> object:
        daemon.run_once()
        return condition()

    wait_until(ticked, timeout=timeout, step=0.1)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def test_row_goes_pending_to_complete_with_the_agent_writing_into_the_project(
    base_image: str, instance: str, docker_api: APIClient, tmp_path: Path
) -> None:
    name = unique("alpha")
    command = [
        "sh",
        "-c",
        'echo working on "$SIDEKICK_PROJECT"; echo "$SIDEKICK_NEXT_ACTION" > note.txt',
    ]
    world = container_world(
        tmp_path, [name], command, base_image, instance, rows=[f"{name},1,Pending,,,Ship it,,,"]
    )
    daemon, store = container_daemon(world.config())
    tick_until(daemon, lambda: world.rows()[name].status is P.COMPLETE)
    assert (tmp_path / "projects" / name / "note.txt").read_text() == "Ship it\n"
    assert "complete" in world.rows()[name].last_update
    (run,) = store.runs(name)
    assert run.runner == "container" and run.state == "finished" and run.exit_code == 0
    assert Path(run.log_path).read_text() == f"working on {name}\n"
    engine = ContainerEngine(world.config().containers)
    tick_until(daemon, lambda: engine.list(slugify(name)) == [])


def test_failing_container_agent_is_failed_with_its_log_tail(
    base_image: str, instance: str, tmp_path: Path
) -> None:
    name = unique("beta")
    failing = ["sh", "-c", "echo step one; echo 'boom: disk full' >&2; exit 3"]
    world = container_world(
        tmp_path, [name], failing, base_image, instance, rows=[f"{name},1,Pending,,,,,,"]
    )
    daemon, store = container_daemon(world.config())
    tick_until(daemon, lambda: world.rows()[name].status is P.FAILED)
    assert "exit 3: boom: disk full" in world.rows()[name].last_update
    (run,) = store.runs(name)
    assert run.exit_code == 3 and "boom" in run.reason


def appeared(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def start_daemon(world: World) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", DAEMON_SCRIPT, str(world.config_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_sigkill_of_the_daemon_mid_run_never_leaves_two_containers_for_a_project(
    base_image: str, instance: str, docker_api: APIClient, tmp_path: Path
) -> None:
    names = [unique(f"k{i}") for i in range(3)]
    # Each agent takes a lock directory in its project (all a container sees); finding
    # it taken means two containers of one project ran at once.
    agent = [
        "sh",
        "-c",
        'if ! mkdir .agent-lock 2>/dev/null; then echo "$SIDEKICK_PROJECT" >> duplicates; fi; '
        'echo "$SIDEKICK_RUN_ID" >> started; sleep 1; rmdir .agent-lock',
    ]
    rows = [f"{n},{i},Pending,,,,,," for i, n in enumerate(names)]
    world = container_world(tmp_path, names, agent, base_image, instance, rows=rows)
    engine = ContainerEngine(world.config().containers)
    rng = random.Random(6)
    for round_number in range(8):
        daemon = start_daemon(world)
        if round_number % 2 == 0:
            # Every other kill lands while an agent container is alive.
            appeared(engine.list, timeout=20)
            time.sleep(rng.uniform(0.0, 0.6))
        else:
            time.sleep(rng.uniform(0.2, 2.0))
        daemon.kill()
        daemon.wait()
        per_project = [len(engine.list(slugify(n))) for n in names]
        assert max(per_project) <= 1, per_project
    final, store = container_daemon(world.config())
    tick_until(
        final, lambda: all(r.status is P.COMPLETE for r in world.rows().values()), timeout=90
    )
    projects = [tmp_path / "projects" / n for n in names]
    assert not [p for p in projects if (p / "duplicates").exists()], "two agents ran at once"
    started = {run for p in projects for run in (p / "started").read_text().split()}
    recorded = {run.run_id for n in names for run in store.runs(n, limit=100)}
    assert started <= recorded, "an agent ran with no run in the state store"
    assert not store.active_runs()
    kinds = [e.kind for n in names for e in store.events(n, limit=200)]
    assert "adopted" in kinds, "no kill landed while an agent was running"
    assert all(docker_api.containers(all=True, filters={"name": agent_key(n)}) == [] for n in names)

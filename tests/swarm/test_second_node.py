"""A second engine joined as a worker labelled sidekick.gpu=true: GPU rows go there,
constrained rows stay off it, and capacity.gpu_slots holds across the cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from docker.api.client import APIClient

from sidekick.config import AgentProfile
from sidekick.containers.settings import ContainersConfig
from sidekick.containers.swarm import SwarmEngine
from sidekick.models import ProjectStatus, slugify
from sidekick.runners.base import LaunchSpec
from sidekick.runners.swarm import SwarmRunner, node_names
from tests.needs import missing
from tests.polling import wait_until
from tests.runners.helpers import make_spec
from tests.swarm.helpers import swarm_daemon, swarm_world, tick_until, unique
from tests.swarm.second_node import SecondEngine, can_run_second_engine

P = ProjectStatus
GPU_LABELS = {"sidekick.gpu": "true"}
OFF_GPU = "node.labels.sidekick.gpu!=true"


@pytest.fixture(scope="module")
def second_engine(
    swarm_manager: str,
    docker_api: APIClient,
    base_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SecondEngine]:
    """The second engine, joined as a GPU worker, with the base image."""
    problem = can_run_second_engine()
    if problem:
        missing(problem)
    node = SecondEngine(tmp_path_factory.mktemp("node2"))
    try:
        node.start()
        node.load_image(docker_api, base_image)
        node.join(docker_api, docker_api.info()["Swarm"]["NodeAddr"], GPU_LABELS)
        yield node
    finally:
        node.stop(docker_api)


@pytest.fixture
def gpu_worker(second_engine: SecondEngine) -> str:
    """The GPU worker's node id."""
    return second_engine.node_id


def _ended_task_node(engine: SwarmEngine, key: str) -> str:
    (service,) = [s for s in engine.services() if s.name == key]

    def ended() -> str | None:
        tasks = engine.tasks(service.id)
        return tasks[0].node_id if tasks and tasks[0].ended else None

    node = wait_until(ended, timeout=60, step=0.2)
    assert engine.tasks(service.id)[0].state == "complete", engine.tasks(service.id)[0]
    return str(node)


def _runner(engine: SwarmEngine, image: str, root: Path, **profile: Any) -> SwarmRunner:
    settings = AgentProfile(runner="swarm", image=image, shared_paths=(root,), **profile)
    return SwarmRunner(engine, settings)


def test_a_gpu_row_runs_on_the_gpu_worker(
    gpu_worker: str, swarm_engine: SwarmEngine, base_image: str, tmp_path: Path
) -> None:
    runner = _runner(swarm_engine, base_image, tmp_path)
    spec = make_spec(tmp_path, "sidekick-trainer", ("sh", "-c", "echo training"))
    runner.start(LaunchSpec(**{**vars(spec), "gpu": True}))
    assert _ended_task_node(swarm_engine, "sidekick-trainer") == gpu_worker
    assert runner.list_agents()["sidekick-trainer"].exit_code == 0
    assert spec.log_path.read_text() == "training\n"


def test_a_constrained_row_is_kept_off_the_gpu_worker(
    gpu_worker: str, swarm_manager: str, swarm_engine: SwarmEngine, base_image: str, tmp_path: Path
) -> None:
    runner = _runner(swarm_engine, base_image, tmp_path, constraints=(OFF_GPU,))
    for index in range(3):
        key = f"sidekick-web-{index}"
        runner.start(make_spec(tmp_path, key, ("true",)))
        assert _ended_task_node(swarm_engine, key) == swarm_manager


def test_gpu_slots_hold_across_the_cluster(
    gpu_worker: str, base_image: str, instance: str, swarm_engine: SwarmEngine, tmp_path: Path
) -> None:
    names = [unique(f"gpu{i}") for i in range(3)]
    command = ["sh", "-c", "sleep 1"]
    rows = [f"{n},{i},Pending,,,,,yes," for i, n in enumerate(names)]
    world = swarm_world(
        tmp_path,
        names,
        command,
        base_image,
        instance,
        rows=rows,
        capacity={"max_agents": 3, "gpu_slots": 1},
    )
    daemon, _ = swarm_daemon(world.config())
    most = 0

    def all_complete() -> bool:
        nonlocal most
        most = max(most, len(swarm_engine.services()))
        return all(r.status is P.COMPLETE for r in world.rows().values())

    tick_until(daemon, all_complete, timeout=120)
    assert most == 1


def test_status_shows_the_node_each_swarm_agent_runs_on(
    gpu_worker: str, base_image: str, instance: str, swarm_engine: SwarmEngine, tmp_path: Path
) -> None:
    gpu, web = unique("gpu"), unique("web")
    # Each task sees only its project's directory: the release file goes into each.
    command = ["sh", "-c", "while [ ! -e release ]; do sleep 0.1; done"]
    world = swarm_world(
        tmp_path,
        [gpu, web],
        command,
        base_image,
        instance,
        rows=[f"{gpu},1,Pending,,,,,yes,", f"{web},2,Pending,,,,,no,"],
    )
    daemon, _ = swarm_daemon(world.config())

    def both_running() -> bool:
        daemon.run_once()
        tasks = [swarm_engine.tasks(s.id) for s in swarm_engine.services()]
        return len(tasks) == 2 and all(t and t[0].state == "running" for t in tasks)

    wait_until(both_running, timeout=60, step=0.2)
    shown = subprocess.run(
        [sys.executable, "-m", "sidekick", "status", "--json", "--config", str(world.config_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    nodes = {p["project"]: p["node"] for p in json.loads(shown.stdout)["projects"]}
    names = node_names(swarm_engine.nodes())
    assert nodes[gpu] == names[gpu_worker]
    assert nodes[web] in names.values()
    table = subprocess.run(
        [sys.executable, "-m", "sidekick", "status", "--config", str(world.config_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"sidekick-{slugify(gpu)} on {names[gpu_worker]}" in table
    for name in (gpu, web):
        (tmp_path / "projects" / name / "release").write_text("0")
    tick_until(daemon, lambda: all(r.status is P.COMPLETE for r in world.rows().values()))


def test_a_worker_engine_is_degraded_for_want_of_a_manager(second_engine: SecondEngine) -> None:
    engine = SwarmEngine(ContainersConfig(docker_host=second_engine.socket, timeout=30))
    runner = SwarmRunner(engine, AgentProfile(runner="swarm", image="x"))
    (problem,) = runner.degraded()
    assert problem == (
        f"docker swarm: no manager answers at {second_engine.socket}: this engine is a swarm "
        "worker: point containers.docker_host at a manager"
    )


def test_sidekick_check_is_unhealthy_when_its_engine_is_no_manager(
    second_engine: SecondEngine, base_image: str, instance: str, tmp_path: Path
) -> None:
    name = unique("orphan")
    world = swarm_world(
        tmp_path,
        [name],
        ["true"],
        base_image,
        instance,
        rows=[f"{name},1,Pending,,,,,,"],
    )
    settings = yaml.safe_load(world.config_path.read_text())
    settings["containers"]["docker_host"] = second_engine.socket
    world.config_path.write_text(yaml.safe_dump(settings))
    daemon, _ = swarm_daemon(world.config())
    daemon.run_once()
    checked = subprocess.run(
        [sys.executable, "-m", "sidekick", "check", "--config", str(world.config_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 1
    assert "degraded: docker swarm: no manager answers" in checked.stderr
    assert "swarm worker" in checked.stderr
    assert world.rows()[name].status is P.PENDING


def test_a_job_on_a_node_that_goes_down_fails_its_row_saying_so(
    second_engine: SecondEngine,
    docker_api: APIClient,
    base_image: str,
    instance: str,
    swarm_engine: SwarmEngine,
    tmp_path: Path,
) -> None:
    name = unique("unplugged")
    world = swarm_world(
        tmp_path,
        [name],
        ["sh", "-c", "echo started; sleep 300"],
        base_image,
        instance,
        rows=[f"{name},1,Pending,,,,,yes,"],
    )
    daemon, store = swarm_daemon(world.config())
    tick_until(daemon, lambda: world.rows()[name].status is P.IN_PROGRESS)
    wait_until(lambda: _task_state(swarm_engine) == "running", timeout=30, step=0.2)
    second_engine.unplug()
    try:
        tick_until(daemon, lambda: world.rows()[name].status is P.FAILED, timeout=90)
    finally:
        second_engine.plug_in()
        wait_until(lambda: _node_state(docker_api, second_engine.node_id) == "ready", timeout=90)
    assert "went down" in world.rows()[name].last_update
    (run,) = store.runs(name)
    assert run.exit_code == 125
    tick_until(daemon, lambda: swarm_engine.services() == [], timeout=90)
    # Back on the network, the node is told to shut the lost task down: it does not run on.
    job = {"label": [f"com.docker.swarm.service.name=sidekick-{slugify(name)}"]}
    worker = second_engine.client()
    try:
        wait_until(lambda: worker.api.containers(filters=job) == [], timeout=30, step=0.2)
    finally:
        worker.close()


def _task_state(engine: SwarmEngine) -> str:
    tasks = [t for s in engine.services() for t in engine.tasks(s.id)]
    return tasks[0].state if tasks else ""


def _node_state(api: APIClient, node_id: str) -> str:
    return str(api.inspect_node(node_id)["Status"]["State"])

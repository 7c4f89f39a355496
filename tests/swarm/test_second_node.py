"""A second engine joined as a worker labelled sidekick.gpu=true: GPU rows go there,
constrained rows stay off it, and capacity.gpu_slots holds across the cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sidekick.config import AgentProfile
from sidekick.containers.swarm import SwarmEngine
from sidekick.models import ProjectStatus
from sidekick.runners.base import LaunchSpec
from sidekick.runners.swarm import SwarmRunner
from tests.needs import missing
from tests.polling import wait_until
from tests.runners.helpers import make_spec
from tests.swarm.helpers import swarm_daemon, swarm_world, tick_until, unique
from tests.swarm.second_node import SecondEngine, can_run_second_engine

P = ProjectStatus
GPU_LABELS = {"sidekick.gpu": "true"}
OFF_GPU = "node.labels.sidekick.gpu!=true"


@pytest.fixture(scope="module")
def gpu_worker(
    swarm_manager: str, docker_api: Any, base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The second engine as a GPU worker with the base image; its node id."""
    problem = can_run_second_engine()
    if problem:
        missing(problem)
    node = SecondEngine(tmp_path_factory.mktemp("node2"))
    try:
        node.start()
        node.load_image(docker_api, base_image)
        manager_address = docker_api.info()["Swarm"]["NodeAddr"]
        yield node.join(docker_api, manager_address, GPU_LABELS)
    finally:
        node.stop(docker_api)


def _ended_task_node(engine: SwarmEngine, key: str) -> str:
    (service,) = [s for s in engine.services() if s.name == key]

    def ended() -> str | None:
        tasks = engine.tasks(service.id)
        return tasks[0].node_id if tasks and tasks[0].ended else None

    node: str = wait_until(ended, timeout=60, step=0.2)
    assert engine.tasks(service.id)[0].state == "complete", engine.tasks(service.id)[0]
    return node


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

"""Swarm runner figures on a single-node swarm of the local Docker engine.

1. Start latency: from the decision to start (``runner.start`` called) until the
   agent runs (the task's state is ``running``; the container's for the container
   runner), median of several, both runners in the same run, and their ratio.
2. Throughput: 50 queued rows with ``max_agents: 5`` on one node, each agent a
   one-second job, from the first reconcile until every row is Complete.

The engine is made a swarm manager only if it is not in a swarm, and leaves it
again at the end; every service, secret and container carries a bench instance
label and is removed.

    .venv/bin/python bench/bench_swarm.py
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
from docker.api.client import APIClient

from _common import HEADER, scratch, write_config
from sidekick.config import AgentProfile, load_config
from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import ContainerError
from sidekick.containers.settings import ContainersConfig
from sidekick.containers.swarm import SwarmEngine
from sidekick.daemon import Daemon, Parts
from sidekick.models import ProjectStatus
from sidekick.priorities.choose import build_source
from sidekick.priorities.csv_file import CsvPrioritySource
from sidekick.runners.base import LaunchSpec, Runner
from sidekick.runners.choose import build_runner
from sidekick.runners.container import ContainerRunner
from sidekick.runners.swarm import SwarmRunner
from sidekick.state import StateStore

IMAGE = os.environ.get("SIDEKICK_BASE_IMAGE", "sidekick-base:bookworm")
STARTS = 7
QUEUED = 50
CAPACITY = 5
STEP = 0.05


@contextmanager
def single_node_swarm(api: APIClient) -> Iterator[None]:
    made = api.info()["Swarm"]["LocalNodeState"] != "active"
    had_bridge = bool(api.networks(names=["docker_gwbridge"]))
    if made:
        api.init_swarm(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
    try:
        yield
    finally:
        if made:
            api.leave_swarm(force=True)
        if made and not had_bridge:
            # swarm init makes this bridge and leaving keeps it: the engine goes back as found.
            api.remove_network("docker_gwbridge")


def wait(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.01)


def spec(root: Path, slug: str) -> LaunchSpec:
    project = root / slug
    project.mkdir(parents=True, exist_ok=True)
    return LaunchSpec(f"sidekick-{slug}", slug, "bench", ("sleep", "600"), project, root / "log")


def swarm_running(engine: SwarmEngine, key: str) -> bool:
    for service in engine.services():
        if service.name == key:
            tasks = engine.tasks(service.id)
            return bool(tasks) and tasks[0].state == "running"
    return False


def start_to_running(runner: Runner, launch: LaunchSpec, running: Callable[[str], bool]) -> float:
    started = time.perf_counter()
    runner.start(launch)
    wait(lambda: running(launch.key))
    return (time.perf_counter() - started) * 1000


def swarm_latency(instance: str, root: Path) -> float:
    engine = SwarmEngine(ContainersConfig(instance=instance, timeout=60))
    profile = AgentProfile(runner="swarm", image=IMAGE, shared_paths=(root,))
    runner = SwarmRunner(engine, profile)
    samples = []
    for i in range(STARTS):
        launch = spec(root, f"{instance}-s{i}")
        samples.append(start_to_running(runner, launch, lambda key: swarm_running(engine, key)))
        runner.stop(launch.key)
    return statistics.median(samples)


def container_latency(instance: str, root: Path) -> float:
    engine = ContainerEngine(ContainersConfig(instance=instance, timeout=60))
    runner = ContainerRunner(engine, AgentProfile(runner="container", image=IMAGE))
    samples = []
    for i in range(STARTS):
        launch = spec(root, f"{instance}-c{i}")
        samples.append(
            start_to_running(runner, launch, lambda key: engine.inspect(key).state == "running")
        )
        engine.remove(launch.key, force=True)
    return statistics.median(samples)


def queue_seconds(instance: str, root: Path) -> float:
    names = [f"q{i:02d}" for i in range(QUEUED)]
    command = ["sh", "-c", "sleep 1"]
    profile = {
        "runner": "swarm",
        "image": IMAGE,
        "command": command,
        "claude": False,
        "shared_paths": [str(root)],
    }
    config_path = write_config(
        root,
        names,
        command,
        agents={"default": profile},
        containers={"instance": instance},
        capacity={"max_agents": CAPACITY},
    )
    csv = root / "priorities.csv"
    csv.write_text(HEADER + "".join(f"{n},{i},Pending,,,,,,\n" for i, n in enumerate(names)))
    config = load_config(config_path, environ={})
    store = StateStore(config.daemon.state_dir / "sidekick.db")
    daemon = Daemon(config, Parts(build_source(config), build_runner(config), store))
    source = CsvPrioritySource(csv)

    def all_complete() -> bool:
        daemon.run_once()
        rows = source.load().by_name().values()
        return all(r.status is ProjectStatus.COMPLETE for r in rows)

    started = time.perf_counter()
    wait(all_complete, timeout=600)
    return time.perf_counter() - started


def sweep(instance: str) -> None:
    engine = SwarmEngine(ContainersConfig(instance=instance, timeout=60))
    for service in engine.services():
        engine.remove_service(service)
    for secret in engine.secrets():
        engine.remove_secret(secret)
    for container in engine.list():
        with contextlib.suppress(ContainerError):
            engine.remove(container.id, force=True)


def main() -> None:
    instance = f"bench-{uuid.uuid4().hex[:6]}"
    api = docker.from_env(timeout=120).api
    root = scratch("swarm")
    with single_node_swarm(api):
        try:
            container_ms = container_latency(instance, root / "c")
            swarm_ms = swarm_latency(instance, root / "s")
            queue_s = queue_seconds(instance, root / "q")
        finally:
            sweep(instance)
    print(
        f"decision to running, median of {STARTS}: swarm job {swarm_ms:.0f} ms, container "
        f"{container_ms:.0f} ms, ratio {swarm_ms / container_ms:.1f}x; {QUEUED} queued one-second "
        f"runs with capacity {CAPACITY} on one node all finished in {queue_s:.1f} s "
        f"(ideal {QUEUED / CAPACITY:.0f} s)"
    )


if __name__ == "__main__":
    main()

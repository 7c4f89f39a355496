"""Container service figures against the local Docker engine.

1. List + status of 50 managed containers: one labelled list call versus one
   inspect per container (what docker-py's non-sparse ``containers.list()`` and
   naive status code do), median of several rounds, and the ratio.
2. Container agent start latency: ``ContainerRunner.start`` (create + start)
   until it returns with the container running, median of 10.

Everything it creates carries a bench instance label and is removed at the
end. Targets: listing at least 5x faster; start under 1 s.

    .venv/bin/python bench/bench_containers.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from _common import scratch
from sidekick.config import AgentProfile
from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import ContainerError
from sidekick.containers.settings import ContainersConfig
from sidekick.containers.spec import ContainerSpec, container_name
from sidekick.runners.base import LaunchSpec
from sidekick.runners.container import ContainerRunner

IMAGE = os.environ.get("SIDEKICK_BASE_IMAGE", "sidekick-base:bookworm")
CONTAINERS = 50
LIST_ROUNDS = 9
STARTS = 10


def create_fleet(engine: ContainerEngine, prefix: str) -> list[str]:
    names = []
    for i in range(CONTAINERS):
        spec = ContainerSpec(f"{prefix}-{i:02d}", "bench", IMAGE, ("sleep", "600"))
        names.append(engine.run(spec).name)
    return names


def timed(action: Callable[[], None], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def list_figures(engine: ContainerEngine, names: list[str]) -> tuple[float, float]:
    def one_call() -> None:
        states = {c.name: c.state for c in engine.list()}
        assert len(states) == CONTAINERS

    def inspect_each() -> None:
        states = {name: engine.inspect(name).state for name in names}
        assert len(states) == CONTAINERS

    one_call()  # warm the connection pool for both
    return timed(one_call, LIST_ROUNDS), timed(inspect_each, LIST_ROUNDS)


def start_latency(engine: ContainerEngine, root: Path, prefix: str) -> float:
    runner = ContainerRunner(engine, AgentProfile(runner="container", image=IMAGE))
    samples = []
    for i in range(STARTS):
        slug = f"{prefix}-start-{i}"
        project = root / slug
        project.mkdir(parents=True)
        spec = LaunchSpec(
            container_name(slug), slug, "bench", ("sleep", "600"), project, root / f"{slug}.log"
        )
        started = time.perf_counter()
        runner.start(spec)
        samples.append((time.perf_counter() - started) * 1000)
        engine.remove(spec.key, force=True)
    return statistics.median(samples)


def sweep(engine: ContainerEngine) -> None:
    for info in engine.list():
        try:
            engine.remove(info.id, force=True)
        except ContainerError as exc:
            print(f"could not remove {info.name}: {exc}", file=sys.stderr)


def main() -> None:
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    engine = ContainerEngine(ContainersConfig(instance=prefix, timeout=60))
    status = engine.ping()
    if not status.ok:
        raise SystemExit(f"no Docker engine: {status.detail}")
    root = scratch("containers")
    try:
        names = create_fleet(engine, prefix)
        list_ms, inspect_ms = list_figures(engine, names)
        sweep(engine)
        start_ms = start_latency(engine, root, prefix)
    finally:
        sweep(engine)
    ratio = inspect_ms / list_ms
    print(
        f"{CONTAINERS} managed containers: list+status one call median {list_ms:.1f} ms, "
        f"one inspect each median {inspect_ms:.1f} ms, ratio {ratio:.1f}x (target >= 5x); "
        f"container agent start median of {STARTS}: {start_ms:.0f} ms (target < 1000 ms)"
    )


if __name__ == "__main__":
    main()

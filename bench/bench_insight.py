"""Insight and Dockerfile figures against the local Docker engine.

1. ``sidekick insight --json`` over 20 running containers (a whole command:
   process start, inspect, top, one-shot stats fetched concurrently, events)
   against ``docker stats --no-stream`` over the same 20, each the median of a
   few rounds in the same run, and their ratio. Target <= 1.0x: one-shot stats
   need not wait for the engine's second sample.
2. Dockerfile detection and generation for each fixture project under
   tests/insight/projects, median of many rounds. Target < 100 ms each.

Every container it makes carries a bench label and is removed at the end.

    .venv/bin/python bench/bench_insight.py
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import docker

from _common import scratch
from sidekick.insight.detect import detect_build
from sidekick.insight.generate import generate

IMAGE = os.environ.get("SIDEKICK_BASE_IMAGE", "sidekick-base:bookworm")
CONTAINERS = 20
ROUNDS = 5
GENERATE_ROUNDS = 50
LABEL = "sidekick-bench.insight"
PROJECTS = Path(__file__).resolve().parent.parent / "tests" / "insight" / "projects"


def start_fleet(api: docker.APIClient, run: str) -> list[str]:
    names = []
    for i in range(CONTAINERS):
        name = f"bench-insight-{run}-{i:02d}"
        created = api.create_container(
            IMAGE, command=["sleep", "600"], name=name, labels={LABEL: run}
        )
        api.start(created["Id"])
        names.append(name)
    return names


def sweep(api: docker.APIClient, run: str) -> None:
    for row in api.containers(all=True, filters={"label": f"{LABEL}={run}"}):
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_container(row["Id"], force=True)


def timed(argv: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def insight_against_docker_stats(config: Path, names: list[str]) -> tuple[float, float]:
    ours = [sys.executable, "-m", "sidekick", "insight", "--config", str(config), "--json", *names]
    theirs = ["docker", "stats", "--no-stream", *names]
    insight, stats = [], []
    for _ in range(ROUNDS):  # interleaved, so both see the same engine load
        insight.append(timed(ours))
        stats.append(timed(theirs))
    return statistics.median(insight), statistics.median(stats)


def generation_times() -> dict[str, float]:
    projects = sorted(d for d in PROJECTS.iterdir() if d.is_dir() and d.name != "monorepo")
    times = {}
    for project in [*projects, PROJECTS / "monorepo" / "services" / "api"]:
        samples = []
        for _ in range(GENERATE_ROUNDS):
            began = time.perf_counter()
            generate(detect_build(project))
            samples.append(time.perf_counter() - began)
        times[str(project.relative_to(PROJECTS))] = statistics.median(samples) * 1000
    return times


def main() -> None:
    client = docker.from_env(timeout=120)
    api = client.api
    run = uuid.uuid4().hex[:8]
    root = scratch("insight")
    config = root / "config.yaml"
    config.write_text("{}\n")
    try:
        names = start_fleet(api, run)
        insight_s, stats_s = insight_against_docker_stats(config, names)
    finally:
        sweep(api, run)
        client.close()
    times = generation_times()
    for project, ms in times.items():
        print(f"  detect+generate {project}: {ms:.2f} ms")
    slowest = max(times, key=lambda name: times[name])
    print(
        f"sidekick insight over {CONTAINERS} running containers median {insight_s:.2f} s, "
        f"docker stats --no-stream over the same {stats_s:.2f} s, "
        f"ratio {insight_s / stats_s:.2f}x (target <= 1.0x); "
        f"Dockerfile detection+generation for {len(times)} fixtures: slowest "
        f"{times[slowest]:.1f} ms ({slowest}) (target < 100 ms each)"
    )


if __name__ == "__main__":
    main()

"""Image sizes of every target and `docker compose up -d orchestrator` to healthy, median of 5.

Builds the images first through `docker compose build` (seconds when cached,
minutes from cold), on the local base image when docker/build-base-image.sh
made one, else the default base. Each of the 5 rounds brings up a fresh compose
project (orchestrator and mock-claude) over a scratch data directory, times
`up -d` to the health check's first "healthy", and takes it down with its
volumes. Needs a Docker engine with Compose v2 (.ci/install-docker.sh).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import docker
import yaml
from docker.errors import ImageNotFound

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
LOCAL_BASE_IMAGE = "sidekick-base:bookworm"
DEFAULT_BASE_IMAGE = "python:3.11-slim-bookworm"
IMAGE_REPOSITORY = "sidekick-bench"
TARGETS = ("production", "test", "dev", "mock-claude")
BUILD_ORDER = ("orchestrator", "mock-claude", "test", "dev")
ROUNDS = 5
HEALTHY_WITHIN = 120.0
MB = 1_000_000


def base_image(client: docker.DockerClient) -> str:
    if os.environ.get("SIDEKICK_BASE_IMAGE"):
        return os.environ["SIDEKICK_BASE_IMAGE"]
    try:
        client.images.get(LOCAL_BASE_IMAGE)
    except ImageNotFound:
        return DEFAULT_BASE_IMAGE
    return LOCAL_BASE_IMAGE


def compose(env: dict[str, str], project: str, *args: str) -> None:
    subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "-p", project, *args],
        env=env,
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )


def environment(base: str) -> dict[str, str]:
    return {
        **os.environ,
        "SIDEKICK_BASE_IMAGE": base,
        "SIDEKICK_IMAGE": IMAGE_REPOSITORY,
        "SIDEKICK_UID": str(os.getuid()),
        "SIDEKICK_GID": str(os.getgid()),
    }


def scratch_data() -> Path:
    data = Path(tempfile.mkdtemp(prefix="sidekick-bench-images-")) / "data"
    (data / "projects").mkdir(parents=True)
    config = {
        "priority_source": {"type": "csv", "csv": {"path": "priorities.csv"}},
        "projects_root": "/projects",
        "api": {"base_url": "http://mock-claude:8080"},
    }
    (data / "config.yaml").write_text(yaml.safe_dump(config))
    (data / "priorities.csv").write_text("Project,Priority,Status,Agent,Last Update\n")
    return data


def health(client: docker.DockerClient, project: str) -> str:
    labels = [f"com.docker.compose.project={project}", "com.docker.compose.service=orchestrator"]
    found = client.containers.list(all=True, filters={"label": labels})
    if not found:
        return "absent"
    return str(found[0].attrs["State"].get("Health", {}).get("Status", "none"))


def up_to_healthy(client: docker.DockerClient, env: dict[str, str]) -> float:
    project = f"skbench{uuid.uuid4().hex[:8]}"
    data = scratch_data()
    env = {**env, "SIDEKICK_DATA_DIR": str(data), "SIDEKICK_PROJECTS_DIR": str(data / "projects")}
    try:
        started = time.monotonic()
        compose(env, project, "up", "-d", "--no-build", "orchestrator")
        while health(client, project) != "healthy":
            if time.monotonic() - started > HEALTHY_WITHIN:
                raise RuntimeError(f"orchestrator not healthy within {HEALTHY_WITHIN:.0f} s")
            time.sleep(0.05)
        return time.monotonic() - started
    finally:
        compose(env, project, "--profile", "*", "down", "-v", "--remove-orphans", "--timeout", "10")


def size_mb(client: docker.DockerClient, name: str) -> float:
    return float(client.images.get(name).attrs["Size"]) / MB


def main() -> None:
    client = docker.from_env(timeout=120)
    base = base_image(client)
    env = environment(base)
    started = time.monotonic()
    for service in BUILD_ORDER:  # one at a time: the classic builder would repeat shared stages
        compose(env, "skbench-build", "--profile", "tools", "build", service)
    build_s = time.monotonic() - started
    sizes = {t: size_mb(client, f"{IMAGE_REPOSITORY}:{t}") for t in TARGETS}
    base_mb = size_mb(client, base)
    samples = [up_to_healthy(client, env) for _ in range(ROUNDS)]
    print(f"build (cache as found) {build_s:.0f} s; base {base} {base_mb:.0f} MB")
    print("up -d to healthy: " + ", ".join(f"{s:.1f}" for s in samples) + " s")
    listing = ", ".join(f"{t} {mb:.0f} MB" for t, mb in sizes.items())
    print(
        f"{listing}; production adds {sizes['production'] - base_mb:.0f} MB to its base; "
        f"up -d orchestrator to healthy median {statistics.median(samples):.1f} s (n={ROUNDS})"
    )


if __name__ == "__main__":
    main()

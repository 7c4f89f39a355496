"""Fixtures for the tests of the images and docker-compose.yml against a real engine.

They need a Docker engine and Compose v2: without them the tests skip on a
laptop and fail under CI=true (.ci/install-docker.sh provides both, and the
local base image, on a machine that has neither).
"""

from __future__ import annotations

import itertools
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import yaml

from tests.integration.compose import SESSION, Compose, compose_env, sweep_session
from tests.integration.world import HEADER, World, world_config
from tests.needs import missing

logger = logging.getLogger(__name__)

_projects = itertools.count(1)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        missing(f"no Docker engine answers ({exc}); run .ci/install-docker.sh")
    _require_compose()
    yield client
    sweep_session(client)
    client.close()


def _require_compose() -> None:
    try:
        result = subprocess.run(
            ["docker", "compose", "version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        missing("the docker CLI is not installed; run .ci/install-docker.sh")
    if result.returncode != 0:
        missing(f"Docker Compose v2 is not installed ({result.stderr.strip()})")


@pytest.fixture(scope="session")
def session_env(docker_client: docker.DockerClient) -> dict[str, str]:
    return compose_env(docker_client)


@pytest.fixture(scope="session")
def built(session_env: dict[str, str]) -> float:
    """Every image of docker-compose.yml, built once per session; the seconds it took."""
    seconds = Compose(f"{SESSION}-build", session_env).build()
    logger.info(
        "built every image in %.0f s (base %s)", seconds, session_env["SIDEKICK_BASE_IMAGE"]
    )
    return seconds


@pytest.fixture
def project(built: float, session_env: dict[str, str]) -> Iterator[Compose]:
    """A compose project of this test's own, taken down with its volumes afterwards."""
    compose = Compose(f"{SESSION}-{next(_projects)}", session_env)
    yield compose
    compose.down()


@pytest.fixture
def world(tmp_path: Path) -> World:
    data = tmp_path / "data"
    (data / "projects").mkdir(parents=True)
    (data / "config.yaml").write_text(yaml.safe_dump(world_config()), encoding="utf-8")
    (data / "priorities.csv").write_text(HEADER, encoding="utf-8")
    return World(data)


@pytest.fixture
def orchestrator_project(project: Compose, world: World) -> Compose:
    """The project with the world's directories as the orchestrator's data and projects."""
    project.extra_env.update(
        SIDEKICK_DATA_DIR=str(world.data), SIDEKICK_PROJECTS_DIR=str(world.data / "projects")
    )
    return project

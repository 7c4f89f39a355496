"""Fixtures for tests against the real Docker engine.

Every container a test creates carries either its own instance label (through
ContainerEngine) or the session's test label (made directly with the SDK), and
is removed by label when the test or the session ends. Images come from the
local base image built by .ci/install-docker.sh: nothing is pulled.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import docker
import pytest
from docker.api.client import APIClient

from sidekick.containers.engine import ContainerEngine
from sidekick.containers.settings import ContainersConfig
from sidekick.models import slugify
from tests.containers.helpers import BASE_IMAGE, SESSION, TEST_LABEL, sweep
from tests.needs import missing

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def docker_api() -> Iterator[APIClient]:
    """A raw SDK client, for setting up and checking what sidekick's own code did."""
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:
        missing(f"no Docker engine answers ({exc}); run .ci/install-docker.sh")
    yield client.api
    sweep(client.api, [f"{TEST_LABEL}={SESSION}"])
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_api: APIClient) -> str:
    try:
        docker_api.inspect_image(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        missing(f"local base image {BASE_IMAGE} not built; run .ci/install-docker.sh")
    return BASE_IMAGE


@pytest.fixture
def instance(docker_api: APIClient) -> Iterator[str]:
    """An instance label of this test's own: its containers, and only those, are swept after."""
    name = f"{SESSION}-{next(_counter)}"
    yield name
    sweep(docker_api, [f"sidekick.instance={name}"])


@pytest.fixture
def engine(instance: str) -> Iterator[ContainerEngine]:
    engine = ContainerEngine(ContainersConfig(instance=instance, timeout=60))
    yield engine
    engine.close()


@pytest.fixture
def slug(request: pytest.FixtureRequest) -> str:
    """A project slug no other test or engineer uses."""
    return slugify(f"{request.node.name[5:25]}-{uuid.uuid4().hex[:6]}")

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.containers.helpers import BASE_IMAGE
from tests.needs import missing
from tests.production.fixture import ProdApp, make_app


@pytest.fixture(scope="session")
def engine_ready() -> None:
    try:
        client = docker.from_env()
        client.images.get(BASE_IMAGE)
    except docker.errors.DockerException as exc:
        missing(f"the Docker engine and the image {BASE_IMAGE}: {exc}")
    client.close()


@pytest.fixture
def prod_app(tmp_path: Path, engine_ready: None) -> Iterator[ProdApp]:
    """The fixture app running healthy in production."""
    app = make_app(tmp_path)
    try:
        app.compose("up", "-d", "--build", "--wait")
        yield app
    finally:
        app.take_down()

"""The throwaway fixture containers: made with testcontainers, no reaper, swept by label."""

from __future__ import annotations

import docker
from testcontainers.core.config import testcontainers_config

from tests import docker_leftovers
from tests.conftest import SESSIONS
from tests.integration.compose import SESSION
from tests.throwaway import throwaway


def _swept(client: docker.DockerClient) -> set[str]:
    """The containers the session's sweep would remove."""
    return set(docker_leftovers.inventory(client, SESSIONS).objects["containers"].values())


def test_a_throwaway_container_starts_without_a_reaper_and_the_sweep_would_find_it(
    engine_ready: None,
) -> None:
    name = f"{SESSION}-throwaway"
    client = docker.from_env()
    try:
        with throwaway(["sleep", "infinity"], name=name):
            assert client.containers.get(name).status == "running"
            assert name in _swept(client)
            images = {c.attrs["Config"]["Image"] for c in client.containers.list(all=True)}
            assert testcontainers_config.ryuk_image not in images
        assert name not in _swept(client)
    finally:
        client.close()

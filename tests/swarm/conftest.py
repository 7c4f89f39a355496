"""Fixtures for the swarm runner: a single-node swarm on the test engine, left as found.

The session makes this engine a swarm manager only if it is not in a swarm
already, and leaves that swarm again at the end; every service and secret a
test makes carries its instance label and is removed by label afterwards.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import docker
import pytest
from docker.api.client import APIClient

from sidekick.containers.settings import ContainersConfig
from sidekick.containers.swarm import SwarmEngine

# Importing these fixtures makes them this directory's own.
from tests.containers.conftest import base_image, docker_api, instance, slug  # noqa: F401
from tests.needs import missing

GATEWAY_BRIDGE = "docker_gwbridge"


def advertise_address() -> str:
    """This machine's address on its default route: what a second node can reach."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        # A UDP connect sends nothing; it only picks the route and its source address.
        probe.connect(("203.0.113.1", 9))
        return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


@pytest.fixture(scope="session")
def swarm_manager(docker_api: APIClient) -> Iterator[str]:  # noqa: F811
    """This engine as a swarm manager; the node id. Leaves the swarm only if it made it."""
    state = docker_api.info().get("Swarm") or {}
    had_bridge = bool(docker_api.networks(names=[GATEWAY_BRIDGE]))
    made = False
    if state.get("LocalNodeState") != "active":
        try:
            docker_api.init_swarm(advertise_addr=advertise_address(), listen_addr="0.0.0.0:2377")
        except docker.errors.APIError as exc:
            missing(f"docker swarm init failed here: {exc.explanation}")
        made = True
        state = docker_api.info()["Swarm"]
    elif not state.get("ControlAvailable"):
        missing("this engine is a swarm worker, not a manager: the swarm tests need a manager")
    yield str(state["NodeID"])
    if made:
        with contextlib.suppress(docker.errors.APIError):
            docker_api.leave_swarm(force=True)
        if not had_bridge:
            # swarm init makes this bridge and leaving keeps it: the engine goes back as found.
            with contextlib.suppress(docker.errors.APIError):
                docker_api.remove_network(GATEWAY_BRIDGE)


@pytest.fixture
def swarm_engine(swarm_manager: str, instance: str, docker_api: APIClient) -> Iterator[SwarmEngine]:  # noqa: F811
    engine = SwarmEngine(ContainersConfig(instance=instance, timeout=60))
    yield engine
    labels = {"label": [f"sidekick.instance={instance}"]}
    for service in docker_api.services(filters=labels):
        with contextlib.suppress(docker.errors.APIError):
            docker_api.remove_service(service["ID"])
    for secret in docker_api.secrets(filters=labels):
        with contextlib.suppress(docker.errors.APIError):
            docker_api.remove_secret(secret["ID"])
    engine.close()

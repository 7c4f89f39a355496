"""Fixture containers on the real engine, each made once per session and removed by label.

A web server, a process OOM-killed under a low memory limit, a command that
exits non-zero in a restart loop, a failing health check, a container near its
memory limit, one that exited non-zero once, one from an image with no shell
(a scratch image holding only ``sleep`` and its libraries, copied from the
local base image, so nothing is pulled) and twenty idle containers.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import shutil
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.api.client import APIClient

from sidekick.containers.engine import ContainerEngine
from sidekick.containers.settings import ContainersConfig
from tests.containers.conftest import base_image, docker_api
from tests.containers.helpers import BASE_IMAGE, SESSION, TEST_LABEL
from tests.mockapi import MockServer, mock_server
from tests.needs import missing
from tests.polling import wait_until
from tests.throwaway import throwaway

__all__ = ["base_image", "docker_api"]

MOCK_KEY = "sk-ant-mock-investigate-0123456789abcdef"
SCENARIOS = Path(__file__).with_name("investigate-scenarios.yaml")
MiB = 1024 * 1024
_counter = itertools.count(1)
MANY = 20

# Two builds, so the tools stage is a tagged image removed with the other, not a
# dangling intermediate the legacy builder would leave behind.
TOOLS_DOCKERFILE = f"""
FROM {BASE_IMAGE}
RUN mkdir /out && cp --parents /bin/sleep $(ldd /bin/sleep | grep -o '/[^ ]*') /out
"""
NO_SHELL_DOCKERFILE = """
FROM scratch
COPY --from={tools} /out/ /
ENTRYPOINT ["/bin/sleep"]
"""


@pytest.fixture(scope="session")
def api(docker_api: APIClient, base_image: str) -> APIClient:
    """The containers tests' SDK client, once the base image is known to be there."""
    return docker_api


@pytest.fixture(scope="session")
def engine(api: APIClient) -> Iterator[ContainerEngine]:
    """Our engine client, once an engine is known to answer (skipped or failed otherwise)."""
    engine = ContainerEngine(ContainersConfig(timeout=60))
    yield engine
    engine.close()


def _name(role: str) -> str:
    return f"insight-{SESSION}-{role}-{next(_counter)}"


def start(role: str, command: list[str], image: str = BASE_IMAGE, **create: Any) -> str:
    """Start a throwaway container (testcontainers); its name is returned. It is removed
    by name (``remove``) or by the session's sweep, not through the object, so its
    client is closed at once."""
    name = _name(role)
    container = throwaway(command, name=name, image=image, **create).start()
    container.get_docker_client().client.close()
    return name


def start_published(api: APIClient, role: str, command: list[str], port: int) -> str:
    """Start a labelled container whose port is published on 127.0.0.1 only (testcontainers
    publishes on every interface)."""
    name = _name(role)
    created = api.create_container(
        BASE_IMAGE,
        command=command,
        name=name,
        labels={TEST_LABEL: SESSION},
        ports=[port],
        host_config=api.create_host_config(port_bindings={port: ("127.0.0.1",)}),
    )
    api.start(created["Id"])
    return name


def state(api: APIClient, name: str) -> dict[str, Any]:
    return dict(api.inspect_container(name)["State"])


@pytest.fixture(scope="session")
def web(api: APIClient) -> str:
    name = start_published(api, "web", ["python3", "-m", "http.server", "8000"], 8000)
    port = api.port(name, 8000)[0]["HostPort"]
    wait_until(lambda: _answers(f"http://127.0.0.1:{port}/"), what="web server answering")
    return name


@pytest.fixture(scope="session")
def web_on_network(api: APIClient) -> Iterator[str]:
    """A web server on a user-defined network, where the engine's embedded DNS (127.0.0.11)
    listens on a random TCP port inside the container too."""
    network = f"insight-{SESSION}-net-{next(_counter)}"
    api.create_network(network, driver="bridge", labels={TEST_LABEL: SESSION})
    name = _name("netweb")
    try:
        created = api.create_container(
            BASE_IMAGE,
            command=["python3", "-m", "http.server", "8000"],
            name=name,
            labels={TEST_LABEL: SESSION},
            host_config=api.create_host_config(network_mode=network),
        )
        api.start(created["Id"])
        wait_until(lambda: _listens(api, name, 8000), what="web server on the network listening")
        yield name
    finally:
        remove(api, name)
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_network(network)


def _listens(api: APIClient, name: str, port: int) -> bool:
    """Whether the container's network namespace has the port in LISTEN (from the host)."""
    pid = state(api, name).get("Pid") or 0
    try:
        table = Path(f"/proc/{pid}/net/tcp").read_text()
    except OSError:
        return False
    return f":{port:04X} 00000000:0000 0A" in table


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


# The engine keeps only its last 256 events, and other tests on a shared engine
# push them out: fixtures whose evidence is in events (a health status is an
# event only when it changes) are made by each test.
@pytest.fixture
def oom_killed(api: APIClient) -> str:
    hog = "b = b'x' * (256 * 1024 * 1024)"
    name = start("oom", ["python3", "-c", hog], mem_limit=32 * MiB, memswap_limit=32 * MiB)
    wait_until(lambda: state(api, name)["Status"] == "exited", what="OOM kill")
    return name


@pytest.fixture
def restart_loop(api: APIClient) -> Iterator[str]:
    script = "echo 'cannot open config.toml' >&2; exit 3"
    name = start("loop", ["sh", "-c", script], restart_policy={"Name": "always"})
    wait_until(lambda: api.inspect_container(name)["RestartCount"] >= 3, 60, what="three restarts")
    yield name
    remove(api, name)


@pytest.fixture
def unhealthy(api: APIClient) -> Iterator[str]:
    probe = {
        "test": ["CMD-SHELL", "echo 'GET /health: 503 database down'; exit 1"],
        "interval": 500_000_000,
        "timeout": 2_000_000_000,
        "retries": 2,
    }
    name = start("unhealthy", ["sleep", "600"], healthcheck=probe)
    wait_until(
        lambda: (state(api, name).get("Health") or {}).get("Status") == "unhealthy",
        30,
        what="health check failing",
    )
    yield name
    remove(api, name)


@pytest.fixture(scope="session")
def near_limit(api: APIClient) -> str:
    hold = "import time; b = b'x' * (40 * 1024 * 1024); time.sleep(600)"
    name = start("full", ["python3", "-c", hold], mem_limit=64 * MiB, memswap_limit=128 * MiB)
    wait_until(lambda: _memory(api, name) > 40 * MiB, 30, what="memory held")
    return name


def _memory(api: APIClient, name: str) -> int:
    return int(api.stats(name, stream=False, one_shot=True)["memory_stats"].get("usage") or 0)


@pytest.fixture
def exited_non_zero(api: APIClient) -> str:
    name = start("exit4", ["sh", "-c", "echo 'migration 0042 failed: no such table'; exit 4"])
    wait_until(lambda: state(api, name)["Status"] == "exited", what="exit")
    return name


@pytest.fixture(scope="session")
def no_shell_image(api: APIClient) -> Iterator[str]:
    tools, tag = f"sidekick-insight-tools:{SESSION}", f"sidekick-insight-noshell:{SESSION}"
    try:
        build(api, TOOLS_DOCKERFILE, tools)
        build(api, NO_SHELL_DOCKERFILE.format(tools=tools), tag)
        yield tag
    finally:
        for image in (tag, tools):
            with contextlib.suppress(docker.errors.APIError):
                api.remove_image(image, force=True)


def remove(api: APIClient, name: str) -> None:
    """Remove a fixture container; one already gone (a restart of the engine) is fine."""
    with contextlib.suppress(docker.errors.NotFound):
        api.remove_container(name, force=True)


def build(api: APIClient, dockerfile: str, tag: str) -> None:
    stream = api.build(
        fileobj=io.BytesIO(dockerfile.encode()),
        tag=tag,
        rm=True,
        forcerm=True,
        labels={TEST_LABEL: SESSION},
        decode=True,
    )
    errors = [chunk["error"] for chunk in stream if "error" in chunk]
    assert not errors, f"building {tag}: {errors}"


@pytest.fixture(scope="session")
def no_shell(api: APIClient, no_shell_image: str) -> Iterator[str]:
    name = start("noshell", ["600"], image=no_shell_image)
    wait_until(lambda: state(api, name)["Running"], what="no-shell container running")
    yield name
    # Before its image goes: an image in use is only untagged, and would stay behind.
    remove(api, name)


@pytest.fixture(scope="session")
def many(api: APIClient) -> list[str]:
    batch = uuid.uuid4().hex[:4]
    names = [start(f"many-{batch}-{i:02d}", ["sleep", "600"]) for i in range(MANY)]
    wait_until(lambda: all(state(api, n)["Running"] for n in names), 60, what="20 running")
    return names


@pytest.fixture
def mock() -> Iterator[MockServer]:
    """The mock Claude API with the investigation scenarios, for the real Claude Code CLI."""
    if shutil.which("claude") is None:
        missing("Claude Code CLI `claude` not on PATH (run .ci/install-claude-code.sh)")
    with mock_server(SCENARIOS, api_keys=[MOCK_KEY]) as server:
        yield server

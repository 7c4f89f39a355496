"""The real `docker compose` CLI and the Docker SDK, driven from the integration tests.

Every compose project a test brings up is named ``<SESSION>-<n>`` and taken
down with its volumes when the test ends; whatever a crashed run left behind
is swept at the end of the session by the compose project label. Images are
tagged ``sidekick-test-<SESSION>:<target>`` (never the person's own
``sidekick:<target>``, nor a parallel session's) and untagged when the session
ends (tests/conftest.py); their layers stay as build cache, so the next
session builds in seconds.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.errors import ImageNotFound
from docker.models.containers import Container

from tests import docker_leftovers
from tests.polling import wait_until

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
LOCAL_BASE_IMAGE = "sidekick-base:bookworm"
DEFAULT_BASE_IMAGE = "python:3.11-slim-bookworm"
SESSION = f"sktest{uuid.uuid4().hex[:8]}"
IMAGE_REPOSITORY = f"sidekick-test-{SESSION}"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
TMUX_SOCKET = "/run/sidekick-tmux/sock"
BUILD_TIMEOUT = 3600.0
COMMAND_TIMEOUT = 300.0
BUILD_ORDER = ("orchestrator", "mock-claude", "test", "dev")


def base_image(client: docker.DockerClient) -> str:
    """SIDEKICK_BASE_IMAGE, else the local base image when it was built, else the default."""
    chosen = os.environ.get("SIDEKICK_BASE_IMAGE")
    if chosen:
        return chosen
    try:
        client.images.get(LOCAL_BASE_IMAGE)
    except ImageNotFound:
        return DEFAULT_BASE_IMAGE
    return LOCAL_BASE_IMAGE


def socket_gid() -> int:
    """The group of the engine's socket, which the orchestrator gets through group_add."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    path = host.removeprefix("unix://")
    try:
        return os.stat(path).st_gid
    except OSError:
        return 0


def compose_env(client: docker.DockerClient) -> dict[str, str]:
    """What every compose call of the session sees: the build settings of the host user."""
    env = dict(os.environ)
    env.update(
        SIDEKICK_BASE_IMAGE=base_image(client),
        SIDEKICK_IMAGE=IMAGE_REPOSITORY,
        SIDEKICK_UID=str(os.getuid()),
        SIDEKICK_GID=str(os.getgid()),
        DOCKER_GID=str(socket_gid()),
    )
    return env


def image(target: str) -> str:
    return f"{IMAGE_REPOSITORY}:{target}"


class ComposeError(AssertionError):
    """A compose command failed; carries what it printed."""

    def __init__(self, argv: list[str], result: subprocess.CompletedProcess[str]) -> None:
        self.argv = argv
        self.result = result
        tail = (result.stdout + result.stderr)[-4000:]
        super().__init__(f"{' '.join(argv)} exited {result.returncode}:\n{tail}")


@dataclass
class Compose:
    """One compose project of this repository's docker-compose.yml."""

    project: str
    env: dict[str, str]
    extra_env: dict[str, str] = field(default_factory=dict)
    # Another checkout's compose file: its directory is what `.` mounts.
    file: Path = COMPOSE_FILE

    def argv(self, *args: str) -> list[str]:
        return ["docker", "compose", "-f", str(self.file), "-p", self.project, *args]

    def run_cli(
        self, *args: str, timeout: float = COMMAND_TIMEOUT, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = self.argv(*args)
        started = time.monotonic()
        result = subprocess.run(
            argv,
            env={**self.env, **self.extra_env},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        logger.info(
            "%s: %d in %.1f s", " ".join(args[:2]), result.returncode, time.monotonic() - started
        )
        if check and result.returncode != 0:
            raise ComposeError(argv, result)
        return result

    def build(self, services: tuple[str, ...] = BUILD_ORDER) -> float:
        """Build the services' images one after another; returns the seconds it took.

        One at a time, because the classic builder (no buildx here) runs parallel
        builds of the same stage side by side: the shared stages, the Claude
        Code CLI's among them, would each be built once per image.
        """
        started = time.monotonic()
        for service in services:
            self.run_cli("--profile", "tools", "build", service, timeout=BUILD_TIMEOUT)
        return time.monotonic() - started

    def up(self, *services: str) -> None:
        self.run_cli("up", "-d", "--no-build", *services)

    def down(self) -> None:
        # Every profile, or the services and volumes of the tools and mock-host
        # profiles would stay behind.
        self.run_cli(
            "--profile", "*", "down", "-v", "--remove-orphans", "--timeout", "10", check=False
        )

    def run(
        self, service: str, *command: str, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """`docker compose run --rm` without a terminal; the result is not checked."""
        return self.run_cli("run", "--rm", "-T", service, *command, timeout=timeout, check=False)

    def config(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.run_cli("config", "--format", "json").stdout)
        return parsed


def container_of(client: docker.DockerClient, project: str, service: str) -> Container:
    """The one container of a service, found by compose's labels."""
    labels = [f"{PROJECT_LABEL}={project}", f"{SERVICE_LABEL}={service}"]
    found = client.containers.list(all=True, filters={"label": labels})
    if len(found) != 1:
        raise AssertionError(f"expected one {service} container in {project}, found {len(found)}")
    return found[0]


def health(container: Container) -> str:
    container.reload()
    state = container.attrs["State"]
    return str(state.get("Health", {}).get("Status", state["Status"]))


def wait_healthy(container: Container, timeout: float = 90.0) -> float:
    """Seconds until the container's health check says healthy."""
    started = time.monotonic()
    wait_until(lambda: health(container) == "healthy", timeout, f"{container.name} healthy")
    return time.monotonic() - started


def exec_text(container: Container, *argv: str, user: str = "") -> tuple[int, str]:
    code, output = container.exec_run(list(argv), user=user, demux=False)
    # Neither detached nor streamed: the exec has ended, with its code and whole output.
    assert code is not None and isinstance(output, bytes), (code, output)
    return code, output.decode("utf-8", "replace")


def tmux_sessions(container: Container) -> dict[str, int]:
    """The agents' tmux sessions inside the orchestrator: name to pane pid."""
    code, text = exec_text(
        container, "tmux", "-S", TMUX_SOCKET, "list-sessions", "-F", "#{session_name} #{pane_pid}"
    )
    if code != 0:
        return {}
    pairs = (line.split() for line in text.splitlines() if line.strip())
    return {name: int(pid) for name, pid in pairs}


def heartbeat(container: Container) -> Mapping[str, Any]:
    code, text = exec_text(container, "cat", "/state/heartbeat.json")
    if code != 0:
        return {}
    try:
        parsed: Mapping[str, Any] = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return parsed


def runs_of(container: Container, project: str) -> list[dict[str, Any]]:
    code, text = exec_text(container, "sidekick", "runs", project, "--json")
    assert code == 0, text
    parsed: list[dict[str, Any]] = json.loads(text)
    return parsed


def sweep_session(client: docker.DockerClient) -> None:
    """Remove every container, network and volume of this session's compose projects,
    and untag its images (their layers stay, as the next session's build cache)."""
    mine = docker_leftovers.Sessions(SESSION, SESSION, IMAGE_REPOSITORY)
    docker_leftovers.remove(client, docker_leftovers.inventory(client, mine))

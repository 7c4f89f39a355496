"""The images and the compose services that need no running daemon.

Built through the real `docker compose` from the repository's Dockerfile, on
the local base image where one was built (CI) or the official slim Python image.
"""

from __future__ import annotations

import os
import socket
import urllib.request
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.containers.helpers import raw_labels
from tests.integration.compose import (
    REPO,
    Compose,
    container_of,
    image,
    wait_healthy,
)
from tests.polling import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.timeout(3600)]

TARGETS = ("production", "test", "dev", "mock-claude")
MB = 1_000_000
PRODUCTION_BUDGET_MB = 500


def pinned_claude_version() -> str:
    return (REPO / "docker" / "claude-code.version").read_text(encoding="utf-8").strip()


def test_every_image_builds_from_the_configured_base(
    built: float, docker_client: docker.DockerClient, session_env: dict[str, str]
) -> None:
    base = docker_client.images.get(session_env["SIDEKICK_BASE_IMAGE"])
    for target in TARGETS:
        built_image = docker_client.images.get(image(target))
        layers = built_image.history()
        assert len(layers) > len(base.history()), f"{target} adds nothing to its base"
        assert base.id in {layer["Id"] for layer in layers}, f"{target} is not built on {base.tags}"


def test_production_image_starts_under_tini_to_take_the_data_owner_with_a_health_check(
    built: float, docker_client: docker.DockerClient
) -> None:
    """It starts as root only to become the data directory's owner (test_first_run.py)."""
    config = docker_client.images.get(image("production")).attrs["Config"]
    assert config["User"] in ("", "root", "0")
    assert config["Entrypoint"][0].endswith("tini")
    assert config["Entrypoint"][-2:] == ["-m", "sidekick.container_start"]
    assert config["Cmd"] == ["supervise"]
    assert config["StopSignal"] == "SIGTERM"
    assert config["Healthcheck"]["Test"] == ["CMD", "sidekick", "check"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["TERM"].startswith("xterm")
    assert env["SIDEKICK_TMUX__SOCKET"].startswith("/run/sidekick-tmux/")


def test_production_image_adds_under_500_mb_to_its_base_with_the_claude_cli(
    built: float, docker_client: docker.DockerClient, session_env: dict[str, str]
) -> None:
    base = docker_client.images.get(session_env["SIDEKICK_BASE_IMAGE"]).attrs["Size"]
    production = docker_client.images.get(image("production")).attrs["Size"]
    added = (production - base) / MB
    assert added < PRODUCTION_BUDGET_MB, f"production adds {added:.0f} MB to its base"


def test_production_image_has_the_pinned_claude_code_and_no_node(
    built: float, docker_client: docker.DockerClient
) -> None:
    script = "claude --version; command -v node npm || echo no-node"
    output = run_once(docker_client, image("production"), "sh", "-c", script)
    assert output.startswith(f"{pinned_claude_version()} ")
    assert output.strip().endswith("no-node")


def run_once(client: docker.DockerClient, name: str, *argv: str) -> str:
    """Run a command in a new container of the image; remove it with its anonymous volumes."""
    container = client.containers.create(
        name, entrypoint=list(argv[:1]), command=list(argv[1:]), labels=raw_labels()
    )
    try:
        container.start()
        container.wait(timeout=120)
        return str(container.logs().decode("utf-8", "replace"))
    finally:
        container.remove(force=True, v=True)


def test_dev_container_has_tmux_git_and_claude_and_sees_the_checkout(project: Compose) -> None:
    # This test file exists only in the checkout, never in the image: seeing it
    # proves the mount, and the editable install must resolve into it.
    script = (
        "tmux -V && git --version && claude --version"
        " && test -f /workspace/tests/integration/test_images.py"
        " && python -c 'import sidekick; print(sidekick.__file__)'"
        " && tmux -S /tmp/probe.sock new-session -d -s probe 'sleep 30'"
        " && tmux -S /tmp/probe.sock has-session -t probe && echo tmux-ready"
    )
    result = project.run("dev", "sh", "-c", script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{pinned_claude_version()} " in result.stdout
    assert "/workspace/src/sidekick/__init__.py" in result.stdout
    assert result.stdout.rstrip().endswith("tmux-ready")


def test_dev_service_starts_in_tmux_as_the_host_user(
    project: Compose, docker_client: docker.DockerClient
) -> None:
    assert docker_client.images.get(image("dev")).attrs["Config"]["Cmd"][0] == "tmux"
    result = project.run("dev", "sh", "-c", "id -u; pwd")
    assert result.stdout.split() == [str(os.getuid()), "/workspace"]


@pytest.mark.parametrize("service", ["test", "dev"])
def test_test_and_dev_containers_cannot_reach_the_docker_socket(
    project: Compose, service: str
) -> None:
    probe = (
        "import docker\n"
        "try:\n"
        "    docker.from_env(timeout=5).ping()\n"
        "except Exception as exc:\n"
        "    print('unreachable:', type(exc).__name__)\n"
        "else:\n"
        "    print('REACHED THE ENGINE')\n"
    )
    result = project.run(service, "python", "-c", probe)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("unreachable:"), result.stdout


def test_only_the_orchestrator_mounts_the_docker_socket(project: Compose) -> None:
    services = project.config()["services"]
    with_socket = {name for name, service in services.items() if _mounts_docker_socket(service)}
    assert with_socket == {"orchestrator"}


def _mounts_docker_socket(service: dict[str, Any]) -> bool:
    return any(
        str(volume.get("source", "")).endswith("docker.sock")
        or str(volume.get("target", "")).endswith("docker.sock")
        for volume in service.get("volumes", [])
    )


def test_mock_claude_becomes_healthy_and_is_not_published(
    project: Compose, docker_client: docker.DockerClient
) -> None:
    project.up("mock-claude")
    mock = container_of(docker_client, project.project, "mock-claude")
    wait_healthy(mock, timeout=60)
    assert not any(mock.attrs["NetworkSettings"]["Ports"].values())
    networks = mock.attrs["NetworkSettings"]["Networks"]
    assert list(networks) == [f"{project.project}_internal"]


def test_mock_host_profile_publishes_the_mock_on_loopback(
    project: Compose, docker_client: docker.DockerClient
) -> None:
    port = _free_port()
    project.extra_env["MOCK_CLAUDE_PORT"] = str(port)
    project.run_cli("--profile", "mock-host", "up", "-d", "--no-build", "mock-claude-host")
    mock = container_of(docker_client, project.project, "mock-claude-host")
    wait_healthy(mock, timeout=60)
    wait_until(lambda: _http_ok(port), 20, "GET /health on the published port")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _http_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
            return int(reply.status) == 200
    except OSError:
        return False


def test_test_image_runs_the_suite_by_default(
    built: float, docker_client: docker.DockerClient
) -> None:
    config = docker_client.images.get(image("test")).attrs["Config"]
    assert config["Cmd"][:3] == ["python", "-m", "pytest"]
    assert Path(config["WorkingDir"]) == Path("/app")

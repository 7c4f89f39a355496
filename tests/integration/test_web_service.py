"""`docker compose --profile web up -d web`: the dashboard as a service of its own."""

from __future__ import annotations

import logging
import urllib.request

import docker
import pytest

from tests.integration.compose import Compose, container_of, wait_healthy
from tests.integration.world import World
from tests.polling import wait_until
from tests.web.dashboard import free_port

logger = logging.getLogger(__name__)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(3600)]

TOKEN = "a-token-for-the-compose-dashboard"


def _metrics(port: int) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def _metrics_once(port: int, line: str) -> str:
    """The metrics text once it holds the line; empty until then."""
    text = _metrics(port)
    return text if line in text else ""


def test_the_web_service_serves_the_daemons_state_on_the_hosts_loopback_without_the_socket(
    orchestrator_project: Compose, world: World, docker_client: docker.DockerClient
) -> None:
    secret = world.data / "dashboard.secret"
    secret.write_text(f"alice:{TOKEN}\n", encoding="utf-8")
    port = free_port()
    orchestrator_project.extra_env.update(
        SIDEKICK_WEB_PORT=str(port), SIDEKICK_DASHBOARD_SECRET_FILE=str(secret)
    )
    orchestrator_project.run_cli(
        "--profile", "web", "up", "-d", "--no-build", "orchestrator", "web"
    )
    web = container_of(docker_client, orchestrator_project.project, "web")
    try:
        wait_healthy(web, timeout=90)
    except AssertionError:
        logger.error("web logs:\n%s", web.logs(tail=30).decode("utf-8", "replace"))
        raise
    bindings = web.attrs["HostConfig"]["PortBindings"]["8765/tcp"]
    assert [(b["HostIp"], b["HostPort"]) for b in bindings] == [("127.0.0.1", str(port))]
    mounts = {m["Destination"]: m for m in web.attrs["Mounts"]}
    assert "/var/run/docker.sock" not in mounts
    assert mounts["/data"]["RW"] is False
    # The orchestrator's heartbeat, read from the shared state volume.
    text = wait_until(lambda: _metrics_once(port, "sidekick_daemon_healthy 1.0"), 90)
    assert "sidekick_agents_running 0.0" in text

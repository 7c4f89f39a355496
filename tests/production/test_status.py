from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from sidekick.containers.engine import ContainerEngine
from sidekick.containers.scope import COMPOSE_PROJECT, COMPOSE_SERVICE
from sidekick.containers.settings import ContainersConfig
from sidekick.production.settings import ComposeProject, ProductionConfig
from sidekick.production.status import project_status, render
from sidekick.production.target import Target
from tests.fake_engine import FakeEngine
from tests.production.fixture import SECRET, ProdApp, make_app


def test_status_shows_the_running_service_healthy_with_its_port_and_image(
    prod_app: ProdApp,
) -> None:
    (project,) = prod_app.status_json()
    assert project["problem"] == ""
    (row,) = project["containers"]
    assert row["service"] == "web" and row["state"] == "running"
    assert row["health"] == "healthy" and f"->{8000}/tcp" in row["ports"]
    assert row["image"] == f"{prod_app.compose_project}-web" and row["built"]
    table = prod_app.sidekick("status", prod_app.name)
    assert table.returncode == 0, table.stderr
    assert "CONTAINER" in table.stdout and "healthy" in table.stdout
    assert SECRET not in table.stdout + table.stderr


def test_detect_finds_the_compose_project_by_its_working_directory(prod_app: ProdApp) -> None:
    result = prod_app.sidekick("detect", prod_app.name)
    assert result.returncode == 0, result.stderr
    assert prod_app.compose_project in result.stdout
    assert "working directory is the production path" in result.stdout
    assert f"compose_project: {prod_app.compose_project}" in result.stdout
    assert SECRET not in result.stdout


def test_an_unreachable_engine_or_an_unknown_project_is_a_clear_line(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    argv = [sys.executable, "-m", "sidekick", "prod", "status", "--config", str(app.config)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    assert result.returncode == 1
    expected = f"{app.name}: engine unreachable: cannot reach the Docker engine at unix://"
    assert result.stdout.startswith(expected), result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    unknown = app.sidekick("status", "Nope")
    assert unknown.returncode == 1
    assert unknown.stderr == "sidekick: Nope: has no production block in the configuration\n"


def test_a_configured_service_with_no_container_is_a_missing_row_and_unhealthy(
    tmp_path: Path,
) -> None:
    """``docker compose ps`` leaves out a service that has no container; a configured one is
    down as surely as an exited one. A fake engine answers the one list call and the image
    inspect: a real one would need the service made and then removed."""
    listed = [
        {
            "Id": "c1",
            "Names": ["/shop-web-1"],
            "State": "running",
            "Status": "Up 5 minutes",
            "Image": "shop-web",
            "ImageID": "sha256:1",
            "Labels": {COMPOSE_PROJECT: "shop", COMPOSE_SERVICE: "web"},
            "Ports": [],
        }
    ]

    def answer(request: bytes) -> bytes:
        body = json.dumps(listed if b"/containers/json" in request else {"Created": ""})
        return b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + body.encode()

    with tempfile.TemporaryDirectory(prefix="sk-status-") as directory:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(f"{directory}/engine.sock")
        FakeEngine(listener, answer)
        address = f"unix://{directory}/engine.sock"
        engine = ContainerEngine(ContainersConfig(docker_host=address, api_version="1.41"))
        settings = ProductionConfig(path=tmp_path, services=("web", "cron"))
        compose = ComposeProject("shop", tmp_path / "compose.yaml", ("web", "cron"))
        try:
            status = project_status(Target("Shop", settings, compose, None), engine, "r3")
        finally:
            engine.close()
            listener.close()
    assert [(r.service, r.state) for r in status.rows] == [("web", "running"), ("cron", "missing")]
    assert not status.healthy
    assert "cron" in render([status]).splitlines()[-1]
    assert "missing" in render([status]).splitlines()[-1]
    assert render([status]).splitlines()[0] == "Shop (release r3)"
    before = replace(status, rows=tuple(replace(r, release="r0") for r in status.rows))
    assert render([before]).splitlines()[0] == "Shop (release r0: as before the first deploy)"

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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

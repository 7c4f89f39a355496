"""``sidekick dockerfile --check`` on the real engine, through the local base image.

Which kinds are built and run here, each once:

- Python: Flask from PyPI under each production server it may declare (gunicorn,
  waitress, uvicorn) and under its development server when it declares none; a
  standard-library web server whose port is a constant in its code; and a
  standard-library command-line worker.
- Node: Debian's nodejs, installed by the Dockerfile because the local base has none.
- Static site: served by the base's Python.
- Go: Debian's golang-go (1.19 in bookworm), installed by the Dockerfile because
  the local base has no Go; the fixture uses only the standard library, so
  ``go mod download`` fetches nothing and the build needs no module proxy.
- Rust: Debian's cargo and rustc (1.63 in bookworm), installed the same way; the
  fixture has no dependencies, so cargo never reads the crates.io index.

That is every kind the generator knows: all of their toolchains can be had from
Debian's packages. The Go and Rust checks are the slow ones, nearly all of it
installing the toolchain (compiling the fixture takes seconds): 60 to 120 s each
on a loaded two-core engine. So each kind is built once, by one test, and those
two get twice the suite's per-test timeout.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from docker.api.client import APIClient

from sidekick.cli import main
from sidekick.containers.engine import ContainerEngine
from sidekick.containers.settings import ContainersConfig
from sidekick.insight.check import CHECK_LABEL, Checker, CheckResult
from sidekick.insight.detect import detect_build
from sidekick.insight.generate import generate
from tests.containers.helpers import BASE_IMAGE, SESSION, TEST_LABEL

pytestmark = pytest.mark.docker

PROJECTS = Path(__file__).parent / "projects"
# Installing golang-go or cargo from Debian's packages is most of these checks.
SLOW_TOOLCHAIN = pytest.mark.timeout(600)


def check(project: Path) -> CheckResult:
    engine = ContainerEngine(ContainersConfig(timeout=300))
    try:
        checker = Checker(engine, BASE_IMAGE, labels={TEST_LABEL: SESSION})
        plan = detect_build(project)
        return checker.check(plan, generate(plan))
    finally:
        engine.close()


def left_behind(api: APIClient) -> list[str]:
    containers = api.containers(all=True, filters={"label": [CHECK_LABEL]})
    images = api.images(filters={"label": [f"{TEST_LABEL}={SESSION}", CHECK_LABEL]})
    return [str(c["Id"]) for c in containers] + [str(i["Id"]) for i in images]


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("python-flask", "answered HTTP 200 on port 8000"),
        ("python-flask-gunicorn", "answered HTTP 200 on port 8000"),
        ("python-stdlib-http", "answered HTTP 200 on port 8000"),
        ("node-plain", "answered HTTP 200 on port 3000"),
        ("static-site", "answered HTTP 200 on port 8080"),
        ("python-stdlib-script", "still running after 3 s"),
        pytest.param("go-http", "answered HTTP 200 on port 8090", marks=SLOW_TOOLCHAIN),
        pytest.param("rust-http", "answered HTTP 200 on port 7070", marks=SLOW_TOOLCHAIN),
    ],
)
def test_the_generated_dockerfile_builds_and_serves_then_is_removed(
    api: APIClient, name: str, answer: str
) -> None:
    result = check(PROJECTS / name)
    assert result.passed, (result.stage, result.detail, result.log[-15:])
    assert result.detail == answer
    assert left_behind(api) == []


@pytest.mark.parametrize("server", ["waitress", "uvicorn"])
def test_flask_under_the_other_declared_servers_builds_and_serves(
    api: APIClient, tmp_path: Path, server: str
) -> None:
    project = tmp_path / server
    shutil.copytree(PROJECTS / "python-flask", project)
    (project / "requirements.txt").write_text(f"flask>=3,<4\n{server}\n")
    plan = detect_build(project)
    assert plan.start[0] == {"waitress": "waitress-serve", "uvicorn": "uvicorn"}[server]
    result = check(project)
    assert result.passed, (result.stage, result.detail, result.log[-15:])
    assert result.detail == "answered HTTP 200 on port 8000"
    assert left_behind(api) == []


def test_a_build_error_is_reported_with_the_build_output(api: APIClient, tmp_path: Path) -> None:
    project = tmp_path / "broken"
    shutil.copytree(PROJECTS / "python-flask", project)
    (project / "requirements.txt").write_text("sidekick-no-such-package-anywhere==0.0.1\n")
    result = check(project)
    assert not result.passed and result.stage == "build"
    assert "returned a non-zero code" in result.detail
    assert any("sidekick-no-such-package-anywhere" in line for line in result.log)
    assert left_behind(api) == []


def test_a_start_error_is_reported_with_the_exit_code_and_output(
    api: APIClient, tmp_path: Path
) -> None:
    project = tmp_path / "crashes"
    project.mkdir()
    (project / "main.py").write_text("import sys\nprint('DATABASE_URL is not set')\nsys.exit(2)\n")
    result = check(project)
    assert not result.passed and result.stage == "start"
    assert result.detail == "the container exited with code 2"
    assert result.log == ["DATABASE_URL is not set"]
    assert left_behind(api) == []


def test_a_failing_check_writes_nothing_and_exits_one(
    api: APIClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "crashes"
    project.mkdir()
    (project / "main.py").write_text("raise SystemExit('no config')\n")
    config = tmp_path / "config.yaml"
    config.write_text("{}\n")
    argv = ["dockerfile", "--config", str(config), str(project), "--write", "--check"]
    assert main([*argv, "--base-image", BASE_IMAGE, "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["written"] is False
    assert document["check"]["stage"] == "start"
    assert document["check"]["log"] == ["no config"]
    assert not (project / "Dockerfile").exists() and not (project / ".dockerignore").exists()

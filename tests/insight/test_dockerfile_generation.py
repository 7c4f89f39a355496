"""Detection and generation for every fixture project kind; no engine needed.

Every generated Dockerfile is held to the same rules: the base image is a
build argument, it has more than one stage, dependencies are installed in a
layer of their own before the source is copied, it runs as a non-root user,
EXPOSE and HEALTHCHECK appear exactly when a port is known, and the start
command is the one detection found.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from sidekick.cli import main
from sidekick.insight.detect import BuildPlan, NotDetected, detect_build
from sidekick.insight.generate import generate

PROJECTS = Path(__file__).parent / "projects"

# directory: (kind, tool, framework, port, start command, a file a decision names)
EXPECTED = {
    "python-flask": ("python", "pip", "flask", 8000, "python -m flask --app app:app run", "app.py"),
    "python-fastapi-setuptools": (
        "python",
        "setuptools",
        "fastapi",
        8000,
        "uvicorn main:api",
        "main.py",
    ),
    "python-django-poetry": (
        "python",
        "poetry",
        "django",
        8000,
        "gunicorn --bind 0.0.0.0:8000 mysite.wsgi",
        "mysite/wsgi.py",
    ),
    "python-hatch-script": ("python", "hatch", "script", None, "tool", "pyproject.toml"),
    "python-uv-fastapi": (
        "python",
        "uv",
        "fastapi",
        8000,
        "uvicorn catalog.web:app",
        "uv.lock",
    ),
    "python-pipfile-flask": (
        "python",
        "pipenv",
        "flask",
        8000,
        "gunicorn --bind 0.0.0.0:8000 server:application",
        "Pipfile",
    ),
    "python-stdlib-script": ("python", "none", "script", None, "python main.py", "main.py"),
    "node-plain": ("node", "npm", "plain", 3000, "node server.js", "server.js"),
    "node-express-npm": ("node", "npm", "express", 8081, "node index.js", "package-lock.json"),
    "node-express-yarn": ("node", "yarn", "express", 4000, "node src/app.js", "yarn.lock"),
    "node-next-pnpm": ("node", "pnpm", "next", 3000, "pnpm start", "pnpm-lock.yaml"),
    "go-http": ("go", "go", "", 8090, "/usr/local/bin/hello", "go.mod"),
    "rust-http": ("rust", "cargo", "", 7070, "/usr/local/bin/hello-rs", "src/main.rs"),
    "static-site": (
        "static",
        "none",
        "static",
        8080,
        "python3 -m http.server 8080",
        "public/index.html",
    ),
    "monorepo/services/api": (
        "python",
        "pip",
        "fastapi",
        8000,
        "uvicorn service:app",
        "pnpm-workspace.yaml",
    ),
}


def check_rules(plan: BuildPlan, dockerfile: str) -> None:
    lines = [line for line in dockerfile.splitlines() if line and not line.startswith("#")]
    froms = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    assert lines[0].startswith("ARG BASE_IMAGE="), "the base image is a build argument"
    assert len(froms) >= 2, "multi-stage"
    assert lines[froms[0]].startswith("FROM ${BASE_IMAGE} AS ")
    source = lines.index("COPY . .") if "COPY . ." in lines else None
    if plan.dependency_files and plan.kind != "static":
        copy_deps = lines.index(f"COPY {' '.join(plan.dependency_files)} ./")
        assert source is not None and copy_deps < source, "dependencies before the source"
        installs = [ln for ln in lines[copy_deps:source] if ln.startswith("RUN ")]
        assert installs or not plan.dependencies, "dependencies installed in their own layer"
    users = [line for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"USER root", "USER 0"}, "a non-root user"
    assert lines.index(users[-1]) > froms[-1], "the final stage runs as that user"
    exposes = [line for line in lines if line.startswith("EXPOSE ")]
    health = [line for line in lines if line.startswith("HEALTHCHECK ")]
    if plan.port is None:
        assert not exposes and not health
    else:
        assert exposes == [f"EXPOSE {plan.port}"] and len(health) == 1
    assert lines[-1] == f"CMD {json.dumps(list(plan.start))}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fixture_project_is_detected_and_says_which_file_decided(name: str) -> None:
    kind, tool, framework, port, start, decided_by = EXPECTED[name]
    plan = detect_build(PROJECTS / name)
    assert (plan.kind, plan.tool, plan.framework, plan.port) == (kind, tool, framework, port)
    assert " ".join(plan.start).startswith(start)
    assert any(d.file == decided_by for d in plan.decisions), [str(d) for d in plan.decisions]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_generated_dockerfile_keeps_the_rules(name: str) -> None:
    plan = detect_build(PROJECTS / name)
    generated = generate(plan)
    check_rules(plan, generated.dockerfile)
    ignored = generated.dockerignore.splitlines()
    assert {".git", ".env", "node_modules", ".venv"} <= set(ignored)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_detection_and_generation_take_well_under_a_second(name: str) -> None:
    began = time.perf_counter()
    generate(detect_build(PROJECTS / name))
    assert time.perf_counter() - began < 1.0  # bench/bench_insight.py holds them to 100 ms


def test_fastapi_without_uvicorn_gets_it_installed_and_says_so() -> None:
    plan = detect_build(PROJECTS / "python-uv-fastapi")
    assert "uvicorn" in plan.dependencies
    assert any("uvicorn (added" in str(d) for d in plan.decisions)
    assert "pip install --no-cache-dir uvicorn" in generate(plan).dockerfile


def test_a_node_project_without_dependencies_installs_nothing_but_node() -> None:
    dockerfile = generate(detect_build(PROJECTS / "node-plain")).dockerfile
    runs = [line for line in dockerfile.splitlines() if line.startswith("RUN ")]
    assert not any("npm ci" in line or "npm install" in line for line in runs)
    assert "install -y --no-install-recommends nodejs" in dockerfile


def test_a_directory_with_nothing_to_build_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here\n")
    with pytest.raises(NotDetected, match="how it is built is unknown"):
        detect_build(tmp_path)


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "config.yaml"
    path.write_text("{}\n")
    return str(path)


def test_write_puts_both_files_and_never_over_existing_ones_without_force(
    tmp_path: Path, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "app"
    shutil.copytree(PROJECTS / "python-flask", project)
    assert main(["dockerfile", "--config", config, str(project), "--write"]) == 0
    written = (project / "Dockerfile").read_text()
    assert written == generate(detect_build(project)).dockerfile
    assert ".git" in (project / ".dockerignore").read_text().splitlines()
    (project / "Dockerfile").write_text("FROM mine\n")
    assert main(["dockerfile", "--config", config, str(project), "--write"]) == 1
    assert "already in" in capsys.readouterr().err
    assert (project / "Dockerfile").read_text() == "FROM mine\n"
    assert main(["dockerfile", "--config", config, str(project), "--write", "--force"]) == 0
    assert (project / "Dockerfile").read_text() == written


def test_printing_shows_the_dockerfile_and_the_ignore_file(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dockerfile", "--config", config, str(PROJECTS / "go-http")]) == 0
    out = capsys.readouterr().out
    assert "FROM ${BASE_IMAGE} AS build" in out and "# --- .dockerignore" in out
    assert "#   port: 8090 (from main.go)" in out

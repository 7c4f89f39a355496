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
        "gunicorn --bind 0.0.0.0:8000 mysite.wsgi:application",
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
    "python-stdlib-http": ("python", "none", "script", 8000, "python server.py", "server.py"),
    "python-flask-gunicorn": (
        "python",
        "pip",
        "flask",
        8000,
        "gunicorn --bind 0.0.0.0:8000 app:app",
        "requirements.txt",
    ),
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
    # Flask's development server is said both where the person looks and in the file.
    assert "note: server: python -m flask run" in capsys.readouterr().out
    assert "# NOTE server: python -m flask run" in written
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


# --- the production server of a WSGI app, or a note on the development one ---------------

FLASK_APP = "from flask import Flask\n\napp = Flask(__name__)\n"
WAITRESS = ("waitress-serve", "--listen=0.0.0.0:8000", "app:app")
UVICORN = ("uvicorn", "--interface", "wsgi", "--host", "0.0.0.0", "--port", "8000", "app:app")
GUNICORN = ("gunicorn", "--bind", "0.0.0.0:8000", "app:app")


def flask_project(root: Path, file: str, servers: list[str]) -> Path:
    """A Flask app declaring its dependencies in ``file``, in that file's own format."""
    project = root / "app"
    project.mkdir()
    (project / "app.py").write_text(FLASK_APP)
    names = ["flask", *servers]
    if file == "requirements.txt":
        text = "".join(f"{n}>=1\n" for n in names)
    elif file == "pyproject.toml":
        listed = ", ".join(f'"{n}"' for n in names)
        text = f'[project]\nname = "app"\nversion = "1"\ndependencies = [{listed}]\n'
    else:
        text = "[packages]\n" + "".join(_pipfile_line(n) for n in names)
    (project / file).write_text(text)
    return project


def _pipfile_line(requirement: str) -> str:
    name, _, extras = requirement.partition("[")
    if not extras:
        return f'{name} = "*"\n'
    return f'{name} = {{version = "*", extras = ["{extras.rstrip("]")}"]}}\n'


@pytest.mark.parametrize("file", ["requirements.txt", "pyproject.toml", "Pipfile"])
@pytest.mark.parametrize(
    ("servers", "start"),
    [
        (["gunicorn"], GUNICORN),
        (["waitress"], WAITRESS),
        (["uvicorn[standard]"], UVICORN),
        # gunicorn first whatever the order they are listed in
        (["waitress", "gunicorn"], GUNICORN),
    ],
)
def test_flask_runs_under_the_production_server_the_project_declares(
    tmp_path: Path, file: str, servers: list[str], start: tuple[str, ...]
) -> None:
    plan = detect_build(flask_project(tmp_path, file, servers))
    assert plan.start == start
    assert f"server: {start[0].split('-')[0]} (from {file})" in [str(d) for d in plan.decisions]
    assert plan.notes == []
    assert generate(plan).dockerfile.splitlines()[-1] == f"CMD {json.dumps(list(start))}"


@pytest.mark.parametrize("file", ["requirements.txt", "pyproject.toml", "Pipfile"])
def test_flask_without_a_production_server_notes_its_development_server_and_the_file(
    tmp_path: Path, file: str
) -> None:
    plan = detect_build(flask_project(tmp_path, file, []))
    assert plan.start[:4] == ("python", "-m", "flask", "--app")
    [note] = plan.notes
    assert note.file == file
    assert note.value.startswith("python -m flask run, Flask's development server")
    assert f"{file} declares no gunicorn, waitress or uvicorn" in note.value
    assert f"add gunicorn to {file}" in note.value
    assert "`gunicorn --bind 0.0.0.0:8000 app:app`" in note.value
    assert f"# NOTE {note}" in generate(plan).dockerfile


def test_the_development_server_note_is_printed_and_in_the_json(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = str(PROJECTS / "python-flask")
    assert main(["dockerfile", "--config", config, project]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("note: server: python -m flask run, Flask's development server")
    assert last.endswith("(from requirements.txt)")
    assert main(["dockerfile", "--config", config, project, "--json"]) == 0
    [note] = json.loads(capsys.readouterr().out)["plan"]["notes"]
    assert "development server" in note and note.endswith("(from requirements.txt)")


def django_project(root: Path, servers: list[str]) -> Path:
    project = root / "site"
    shutil.copytree(PROJECTS / "python-django-poetry", project)
    (project / "poetry.lock").unlink()
    names = ", ".join(f'"{n}"' for n in ["django", *servers])
    pyproject = f'[project]\nname = "site"\nversion = "1"\ndependencies = [{names}]\n'
    (project / "pyproject.toml").write_text(pyproject)
    return project


def test_django_runs_under_a_declared_waitress_or_notes_runserver(tmp_path: Path) -> None:
    plan = detect_build(django_project(tmp_path / "a", ["waitress"]))
    assert plan.start == ("waitress-serve", "--listen=0.0.0.0:8000", "mysite.wsgi:application")
    plan = detect_build(django_project(tmp_path / "b", []))
    assert plan.start[:3] == ("python", "manage.py", "runserver")
    [note] = plan.notes
    assert note.file == "pyproject.toml"
    assert note.value.startswith("manage.py runserver, Django's development server")
    assert "`gunicorn --bind 0.0.0.0:8000 mysite.wsgi:application`" in note.value


# --- a plain server's port, from its entry module -------------------------------------------


@pytest.mark.parametrize(
    ("code", "port"),
    [
        ("PORT = 8000\n", 8000),
        ("port=5050\n", 5050),
        ("serve(port=8123)\n", 8123),
        ('PORT = int(os.environ.get("PORT", "9001"))\n', 9001),
        ("PORT = int(os.getenv('PORT', 7000))\n", 7000),
        ('HTTPServer(("0.0.0.0", 8088), Handler).serve_forever()\n', 8088),
        ("socketserver.TCPServer(('', 8765), Handler)\n", 8765),
        # not ports: another name ending in port, a number no port can be, none at all
        ("support = 8000\nREPORT_EVERY = 30\n", None),
        ("PORT = 70000\n", None),
        ("print('hello')\n", None),
    ],
)
def test_a_plain_servers_port_comes_from_its_entry_module(
    tmp_path: Path, code: str, port: int | None
) -> None:
    (tmp_path / "main.py").write_text("import os\n" + code)
    plan = detect_build(tmp_path)
    assert (plan.framework, plan.port) == ("script", port)
    decided = [d for d in plan.decisions if d.topic == "port"]
    assert [(d.value, d.file) for d in decided] == (
        [] if port is None else [(str(port), "main.py")]
    )
    check_rules(plan, generate(plan).dockerfile)


def test_a_framework_decides_the_port_before_the_code_does(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("flask\n")
    (tmp_path / "app.py").write_text(FLASK_APP + "app.run(port=5000)\n")
    assert detect_build(tmp_path).port == 8000

"""Container context detection on fixture projects of each kind (no engine needed)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from docker.api.client import APIClient

from sidekick.containers.context import (
    Kind,
    context_report,
    detect_context,
)
from sidekick.containers.engine import ContainerEngine
from sidekick.containers.manifests import (
    Problem,
    logical_lines,
    parse_jsonc,
    read_devcontainer,
)
from sidekick.containers.runtimes import Runtime, probe_docker, probe_kubectl, probe_podman
from sidekick.containers.settings import ContainersConfig

FIXTURES = Path(__file__).parent / "fixtures"
NO_RUNTIMES: tuple[Runtime, ...] = ()


def fixture(name: str) -> Path:
    return (FIXTURES / name).resolve()


def argvs(directory: Path, runtimes: tuple[Runtime, ...] = NO_RUNTIMES) -> list[list[str]]:
    return [list(c.argv) for c in detect_context(directory, runtimes=runtimes).commands]


def test_dockerfile_stages_are_read_with_names_bases_and_lines() -> None:
    context = detect_context(fixture("dockerfile"), runtimes=NO_RUNTIMES)
    assert context.kinds == (Kind.DOCKERFILE,)
    main, worker = context.dockerfiles
    assert main.path.name == "Dockerfile" and worker.path.name == "worker.Dockerfile"
    stages = [(s.index, s.name, s.base, s.line) for s in main.stages]
    assert stages == [
        (0, "base", "python:${PYTHON}-slim", 3),
        (1, "test", "base", 11),
        (2, "dev", "base", 14),
        (3, "", "base", 17),
    ]
    assert main.dev_stage is not None and main.dev_stage.name == "dev"
    assert context.dev_image is None


def test_dockerfile_commands_build_the_dev_stage_and_run_it_with_the_project_mounted() -> None:
    directory = fixture("dockerfile")
    dockerfile = str(directory / "Dockerfile")
    assert argvs(directory) == [
        [
            "docker",
            "build",
            "-f",
            dockerfile,
            "--target",
            "dev",
            "-t",
            "dockerfile:dev",
            str(directory),
        ],
        [
            "docker",
            "run",
            "--rm",
            "-it",
            "-v",
            f"{directory}:{directory}",
            "-w",
            str(directory),
            "dockerfile:dev",
            "sh",
        ],
    ]
    podman = (Runtime("podman", "/usr/bin/podman"),)
    assert argvs(directory, podman)[3][:2] == ["podman", "run"]


def test_compose_services_are_read_and_the_standard_name_order_is_kept() -> None:
    directory = fixture("compose")
    context = detect_context(directory, runtimes=NO_RUNTIMES)
    assert context.kinds == (Kind.COMPOSE,)
    assert [c.path.name for c in context.compose_files] == ["compose.yaml", "docker-compose.yml"]
    compose = context.compose
    assert compose is not None and compose.project == "shop_front"
    dev = compose.service("dev")
    assert dev is not None and (dev.build_context, dev.dockerfile, dev.target) == (
        ".",
        "Dockerfile",
        "dev",
    )
    db = compose.service("db")
    assert db is not None and db.profiles == ("full",) and db.image == "postgres:16"
    # A service Compose builds runs the image Compose names <project>-<service>.
    assert context.dev_image == "shop_front-dev"


def test_compose_commands_start_the_dev_service_and_exec_into_each() -> None:
    directory = fixture("compose")
    base = [
        "docker",
        "compose",
        "-f",
        str(directory / "compose.yaml"),
        "--project-directory",
        str(directory),
    ]
    assert argvs(directory) == [
        [*base, "up", "-d", "dev"],
        [*base, "exec", "dev", "sh"],
        [*base, "exec", "web", "sh"],
        [*base, "exec", "db", "sh"],
    ]


def test_kubernetes_kustomization_chart_and_plain_manifests_are_found() -> None:
    directory = fixture("kubernetes")
    context = detect_context(directory, runtimes=NO_RUNTIMES)
    assert context.kinds == (Kind.KUBERNETES,)
    (kustomization,) = context.kustomizations
    assert kustomization.namespace == "shop" and kustomization.resources == ("deploy/web.yaml",)
    (chart,) = context.charts
    assert (chart.name, chart.version) == ("web", "0.3.1")
    # The chart's templates and the CI workflow are YAML but not manifests, nor problems.
    assert context.problems == ()
    found = [(m.kind, m.name, m.namespace) for m in context.manifests]
    assert found == [("Deployment", "web", "shop"), ("Service", "web", ""), ("Job", "migrate", "")]
    assert argvs(directory) == [
        ["kubectl", "apply", "-k", str(directory)],
        ["helm", "install", "web", str(directory / "charts" / "web")],
        ["kubectl", "exec", "-it", "-n", "shop", "deployment/web", "--", "sh"],
        ["kubectl", "exec", "-it", "job/migrate", "--", "sh"],
    ]


def test_devcontainer_json_with_comments_and_trailing_commas_gives_the_dev_image() -> None:
    directory = fixture("devcontainer")
    context = detect_context(directory, runtimes=NO_RUNTIMES)
    assert context.kinds == (Kind.DEVCONTAINER,)
    (dev,) = context.devcontainers
    assert dev.name == "Py // not a comment" and dev.remote_user == "vscode"
    assert context.dev_image == "mcr.example/devcontainers/python:3.11"
    assert argvs(directory) == [
        [
            "docker",
            "run",
            "--rm",
            "-it",
            "-v",
            f"{directory}:/workspaces/app",
            "-w",
            "/workspaces/app",
            "mcr.example/devcontainers/python:3.11",
            "sh",
        ]
    ]


def test_devcontainer_through_compose_uses_its_service_image_and_exec() -> None:
    directory = fixture("devcontainer_compose")
    context = detect_context(directory, runtimes=NO_RUNTIMES)
    assert context.kinds == (Kind.COMPOSE, Kind.DEVCONTAINER)
    assert context.dev_image == "devcontainer_compose-workspace"
    compose = str(directory / "compose.yml")
    assert [*argvs(directory)[-1]] == [
        "docker",
        "compose",
        "-f",
        compose,
        "--project-directory",
        str(directory),
        "exec",
        "workspace",
        "sh",
    ]


def test_a_project_with_no_container_files_is_not_containerised() -> None:
    context = detect_context(fixture("plain"), runtimes=NO_RUNTIMES)
    assert context.kinds == () and context.commands == () and context.problems == ()
    assert "Containerised as: not containerised" in context_report(fixture("plain"), context)


def test_broken_files_are_reported_and_the_rest_is_still_read() -> None:
    directory = fixture("broken")
    context = detect_context(directory, runtimes=NO_RUNTIMES)
    assert context.kinds == (Kind.DOCKERFILE,)
    problems = {p.path.name: p.problem for p in context.problems}
    assert set(problems) == {"compose.yaml", "k8s.yaml"}
    assert problems["compose.yaml"].startswith("not valid YAML: line 4: expected")
    report = context_report(directory, context)
    assert "Problems:" in report and "compose.yaml: not valid YAML" in report


def test_report_and_json_data_describe_everything_found(tmp_path: Path) -> None:
    directory = fixture("compose")
    runtimes = (
        Runtime("docker", "/usr/bin/docker", True, True, "engine answers"),
        Runtime("podman"),
    )
    context = detect_context(directory, runtimes=runtimes)
    report = context_report(directory, context)
    assert "Containerised as: Compose" in report
    assert "dev: shop_front-dev, built from . target dev" in report
    assert "docker: usable (engine answers)" in report and "podman: not installed" in report
    assert f"docker compose -f {directory / 'compose.yaml'}" in report
    data = json.loads(json.dumps(context.to_dict()))
    assert data["kinds"] == ["Compose"] and data["dev_image"] == "shop_front-dev"
    assert data["runtimes"][0]["usable"] is True and data["runtimes"][1]["installed"] is False
    assert data["commands"][0]["argv"][:2] == ["docker", "compose"]


def test_dockerfile_lines_join_continuations_and_honour_the_escape_directive() -> None:
    text = "# escape=`\nFROM a `\n  AS b\nRUN x \\\n"
    assert list(logical_lines(text)) == [(2, "FROM a AS b"), (4, "RUN x \\")]


def test_jsonc_drops_comments_but_not_comment_marks_inside_strings() -> None:
    text = '{"url": "http://x//y", /* c */ "a": [1, 2,], // end\n}'
    assert parse_jsonc(text) == {"url": "http://x//y", "a": [1, 2]}


@pytest.mark.parametrize(
    "value",
    [
        "echo [a, ]",
        "echo {a: 1, }",
        "a,}b,]c",
        "/* kept */ and // kept",
        'say \\"hi, ]\\" // not a comment',
        "path\\\\, ]",
        "Привет, ] 世界, }",
    ],
)
def test_jsonc_keeps_every_string_exactly_as_written(value: str) -> None:
    text = '{"cmd": ' + json.dumps(value) + ", // trailing comment\n}"
    assert parse_jsonc(text) == {"cmd": value}


def test_devcontainer_strings_keep_their_commas_and_brackets(tmp_path: Path) -> None:
    path = tmp_path / "devcontainer.json"
    path.write_text('{"name": "echo [a, ]", // the name\n "image": "x:1",}\n')
    record = read_devcontainer(path)
    assert not isinstance(record, Problem)
    assert record.name == "echo [a, ]" and record.image == "x:1"


def test_broken_devcontainer_is_a_problem_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "devcontainer.json"
    path.write_text('{\n  "name": \n}\n')
    problem = read_devcontainer(path)
    assert isinstance(problem, Problem) and problem.path == path
    assert "not valid JSON (with comments): line 3" in problem.problem


# --- runtimes -----------------------------------------------------------------------------


def fake_tool(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)


def test_runtimes_missing_from_path_are_not_installed(tmp_path: Path) -> None:
    empty = str(tmp_path)
    assert not probe_podman(empty).installed and not probe_kubectl(empty).installed
    engine = ContainerEngine(ContainersConfig(docker_host=f"unix://{tmp_path}/none.sock"))
    assert probe_docker(engine, empty) == Runtime("docker")


def test_podman_that_answers_is_usable_and_one_refused_is_not_permitted(tmp_path: Path) -> None:
    fake_tool(tmp_path / "ok", "podman", 'echo "{}"\n')
    assert probe_podman(str(tmp_path / "ok")).usable
    denied = 'echo "Error: mkdir /run/user/0: permission denied" >&2\nexit 125\n'
    fake_tool(tmp_path / "denied", "podman", denied)
    runtime = probe_podman(str(tmp_path / "denied"))
    assert runtime.installed and runtime.reachable and not runtime.permitted
    assert "permission denied" in runtime.summary()


def test_kubectl_without_a_cluster_is_not_reachable_and_with_one_checks_exec_rights(
    tmp_path: Path,
) -> None:
    refused = (
        'echo \'{"clientVersion": {"gitVersion": "v1.32.0"}}\'\n'
        'echo "The connection to the server localhost:8080 was refused" >&2\nexit 1\n'
    )
    fake_tool(tmp_path / "none", "kubectl", refused)
    alone = probe_kubectl(str(tmp_path / "none"))
    assert alone.installed and not alone.reachable and "was refused" in alone.detail
    cluster = (
        'if [ "$1" = version ]; then\n'
        '  echo \'{"serverVersion": {"gitVersion": "v1.31.2"}}\'; exit 0\n'
        "fi\n"
        "echo no\nexit 1\n"
    )
    fake_tool(tmp_path / "cluster", "kubectl", cluster)
    runtime = probe_kubectl(str(tmp_path / "cluster"))
    assert runtime.reachable and not runtime.permitted and "v1.31.2" in runtime.detail


def test_docker_probe_asks_the_real_engine(docker_api: APIClient) -> None:
    runtime = probe_docker(ContainerEngine(), os.environ.get("PATH"))
    assert runtime.usable and "answers" in runtime.detail
    assert runtime.path == (shutil.which("docker") or ContainerEngine().socket)


def test_an_unnamed_last_stage_is_built_without_a_target(tmp_path: Path) -> None:
    """docker build --target takes names only: `--target 1` fails to reach the stage."""
    project = tmp_path / "shop"
    project.mkdir()
    (project / "Dockerfile").write_text(
        "FROM python:3.11-slim AS deps\nRUN true\nFROM python:3.11-slim\nCOPY . /app\n",
        encoding="utf-8",
    )
    builds = [argv for argv in argvs(project) if argv[1] == "build"]
    dockerfile = str(project / "Dockerfile")
    assert builds == [["docker", "build", "-f", dockerfile, "-t", "shop:latest", str(project)]]

"""The first run, as a new user meets it: `docker compose up -d orchestrator` on a
checkout that belongs to root, to UID 1000 or to any other user.

The daemon takes the owner of the data directory when the container starts, so
it writes the list, its agents write in the projects, and what they write stays
the owner's; a root checkout with a profile Claude Code refuses as root stops
with one line; a setting that needs a new image says so.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
from pathlib import Path

import docker
import pytest
import yaml
from docker.models.containers import Container

from tests.integration.compose import (
    REPO,
    Compose,
    container_of,
    exec_text,
    heartbeat,
    wait_healthy,
)
from tests.integration.world import World, world_config
from tests.polling import wait_until

logger = logging.getLogger(__name__)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

OWNERS = [(0, 0), (1000, 1000), (4321, 4322)]
WRITER = {"runner": "tmux", "command": ["sh", "-c", "echo hi > made-by-agent; sleep 600"]}
BYPASSING = ["claude", "-p", "--dangerously-skip-permissions", "--output-format", "json"]


def give(path: Path, uid: int, gid: int) -> None:
    for item in (path, *path.rglob("*")):
        os.lchown(item, uid, gid)


def status_of(data: Path, project: str) -> str:
    text = (data / "priorities.csv").read_text(encoding="utf-8")
    rows = {row["Project"]: row for row in csv.DictReader(io.StringIO(text))}
    return rows.get(project, {}).get("Status", "")


def started(project: Compose, client: docker.DockerClient) -> Container:
    project.up("orchestrator")
    container = container_of(client, project.project, "orchestrator")
    try:
        wait_healthy(container, timeout=120)
    except AssertionError:
        logger.error("orchestrator logs:\n%s", container.logs(tail=50).decode("utf-8", "replace"))
        raise
    return container


def owner(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_uid, stat.st_gid


@pytest.mark.parametrize(("uid", "gid"), OWNERS, ids=["root", "uid1000", "uid4321"])
def test_the_orchestrator_runs_as_whoever_owns_the_data_directory(
    orchestrator_project: Compose,
    world: World,
    docker_client: docker.DockerClient,
    uid: int,
    gid: int,
) -> None:
    config = world_config()
    config["agents"] = {"default": {}, "writer": {**WRITER, "claude": False}}
    (world.data / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    project_dir = world.add_project("alpha")
    world.save_by_rename("alpha,1,Pending,,,write a file,,no,writer\n")
    give(world.data, uid, gid)

    container = started(orchestrator_project, docker_client)

    wait_until(lambda: status_of(world.data, "alpha") == "In Progress", 60, "alpha started")
    made = project_dir / "made-by-agent"
    wait_until(made.exists, 30, "the agent's file")
    assert owner(made) == (uid, gid)
    assert owner(world.priorities) == (uid, gid)
    daemon = heartbeat(container)["pid"]
    code, text = exec_text(container, "stat", "-c", "%u:%g", f"/proc/{daemon}")
    assert (code, text.strip()) == (0, f"{uid}:{gid}")
    logs = container.logs().decode("utf-8", "replace")
    assert "Traceback" not in logs and "PermissionError" not in logs


def test_a_root_checkout_with_a_profile_claude_refuses_as_root_stops_with_one_line(
    orchestrator_project: Compose, world: World, docker_client: docker.DockerClient
) -> None:
    config = world_config()
    config["agents"] = {"yolo": {"runner": "tmux", "command": BYPASSING}}
    config["default_agent"] = "yolo"
    (world.data / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    give(world.data, 0, 0)

    orchestrator_project.up("orchestrator")
    container = container_of(docker_client, orchestrator_project.project, "orchestrator")

    logs = wait_until(
        lambda: container.logs().decode("utf-8", "replace").strip(), 60, "the refusal"
    )
    first_start = logs.splitlines()[0]
    assert "yolo" in first_start and "chown" in first_start and "acceptEdits" in first_start
    assert all(line == first_start for line in logs.splitlines()), logs
    wait_until(lambda: stopped_for_the_config(container), 60, "the start refused (exit 78)")


def stopped_for_the_config(container: Container) -> bool:
    container.reload()
    return bool(container.attrs["State"]["ExitCode"] == 78)


def test_a_changed_build_setting_says_to_rebuild_with_the_exact_command(
    orchestrator_project: Compose, world: World, docker_client: docker.DockerClient
) -> None:
    built_with = orchestrator_project.env["SIDEKICK_BASE_IMAGE"]
    orchestrator_project.extra_env["SIDEKICK_BASE_IMAGE"] = f"{built_with}-changed"

    container = started(orchestrator_project, docker_client)

    logs = container.logs().decode("utf-8", "replace")
    (line,) = [line for line in logs.splitlines() if "--build" in line]
    assert line.endswith("docker compose up -d --build orchestrator")
    assert f"{built_with}-changed" in line


@pytest.mark.claude
def test_the_example_list_writes_notes_with_a_real_agent_on_a_root_owned_checkout(
    orchestrator_project: Compose, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    data = tmp_path / "checkout-data"
    # What git holds of data/: the list and what agents wrote are not in it.
    shutil.copytree(REPO / "data", data)
    (data / "priorities.csv").unlink(missing_ok=True)
    (data / "projects" / "demo" / "NOTES.md").unlink(missing_ok=True)
    give(data, 0, 0)
    orchestrator_project.extra_env.update(
        SIDEKICK_DATA_DIR=str(data), SIDEKICK_PROJECTS_DIR=str(data / "projects")
    )

    started(orchestrator_project, docker_client)

    wait_until(lambda: status_of(data, "demo") == "Complete", 240, "the demo row Complete")
    notes = (data / "projects" / "demo" / "NOTES.md").read_text(encoding="utf-8")
    assert len(notes.splitlines()) == 1 and "demo" in notes
    # The list made from the example at the first start is the person's (root's here).
    assert (data / "priorities.csv").stat().st_uid == 0

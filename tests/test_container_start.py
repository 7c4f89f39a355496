"""The production image's entrypoint: the daemon runs as whoever owns the data directory.

Checkouts belong to root, to UID 1000 or to anyone else; each owner is tried
with real directories, and the switch of user runs in a child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidekick.config import AgentProfile, Config, load_config
from sidekick.container_start import (
    Identity,
    RootRefused,
    identity_for,
    identity_to_take,
    rebuild_hint,
    refused_as_root,
    start_list_from_example,
)
from tests.needs import missing

OWNERS = [(0, 0), (1000, 1000), (4321, 4322), (65534, 65534)]
ACCEPT_EDITS = ("claude", "-p", "--permission-mode", "acceptEdits", "--allowedTools", "Bash")


@pytest.fixture
def as_root() -> None:
    if os.geteuid() != 0:
        missing("giving directories to other users needs root")


@pytest.fixture
def world_readable_tmp() -> Iterator[Path]:
    """A directory other users can reach (pytest's own base directory is root's alone)."""
    with tempfile.TemporaryDirectory(prefix="sidekick-start-") as name:
        Path(name).chmod(0o755)
        yield Path(name)


def owned(path: Path, uid: int, gid: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, gid)
    return path


@pytest.mark.usefixtures("as_root")
@pytest.mark.parametrize(("uid", "gid"), OWNERS)
def test_the_daemon_takes_the_owner_of_the_data_directory(
    tmp_path: Path, uid: int, gid: int
) -> None:
    data = owned(tmp_path / "data", uid, gid)
    socket = tmp_path / "docker.sock"
    socket.touch()
    os.chown(socket, 0, 998)

    assert identity_for(data, socket) == Identity(uid, gid, (998,))


def test_without_a_docker_socket_the_daemon_gets_no_extra_group(tmp_path: Path) -> None:
    identity = identity_for(tmp_path, tmp_path / "no.sock")

    assert identity.groups == ()


BYPASSING = {
    "flag": ("claude", "-p", "--dangerously-skip-permissions"),
    "mode": ("claude", "-p", "--permission-mode", "bypassPermissions"),
    "mode=": ("claude", "-p", "--permission-mode=bypassPermissions"),
}


def test_profiles_claude_code_refuses_as_root_are_named() -> None:
    agents = {name: AgentProfile(command=command) for name, command in BYPASSING.items()}
    agents["default"] = AgentProfile(command=ACCEPT_EDITS)
    agents["shell"] = AgentProfile(command=("sh", "-c", "make test"), claude=False)

    assert refused_as_root(agents) == ("flag", "mode", "mode=")


def test_a_bypassing_profile_in_its_own_container_is_not_root_here() -> None:
    agents = {"boxed": AgentProfile(runner="container", command=BYPASSING["flag"])}

    assert refused_as_root(agents) == ()


@pytest.mark.usefixtures("as_root")
def test_a_root_data_directory_with_a_bypassing_profile_stops_with_one_line(
    tmp_path: Path,
) -> None:
    data = owned(tmp_path / "data", 0, 0)
    config = Config(agents={"yolo": AgentProfile(command=BYPASSING["flag"])})

    with pytest.raises(RootRefused) as refused:
        identity_to_take(data, config)

    line = str(refused.value)
    assert "\n" not in line
    assert "yolo" in line and "chown" in line and "acceptEdits" in line


@pytest.mark.usefixtures("as_root")
def test_a_root_data_directory_keeps_accept_edits_agents_as_root(tmp_path: Path) -> None:
    data = owned(tmp_path / "data", 0, 0)
    config = Config(agents={"default": AgentProfile(command=ACCEPT_EDITS)})

    identity = identity_to_take(data, config)

    assert identity is not None and identity.is_root


@pytest.mark.usefixtures("as_root")
def test_a_user_data_directory_allows_any_profile(tmp_path: Path) -> None:
    data = owned(tmp_path / "data", 1000, 1000)
    config = Config(agents={"yolo": AgentProfile(command=BYPASSING["flag"])})

    assert identity_to_take(data, config) == Identity(1000, 1000, _socket_groups())


def _socket_groups() -> tuple[int, ...]:
    socket = Path("/var/run/docker.sock")
    return (socket.stat().st_gid,) if socket.exists() else ()


BUILT = "SIDEKICK_BASE_IMAGE=python:3.11-slim-bookworm"


def test_settings_that_need_a_new_image_name_the_rebuild_command() -> None:
    hint = rebuild_hint(
        {
            "SIDEKICK_IMAGE_BUILT_WITH": BUILT,
            "SIDEKICK_COMPOSE_BUILD_SETTINGS": "SIDEKICK_BASE_IMAGE=sidekick-base:bookworm",
        }
    )

    assert hint is not None and "\n" not in hint
    assert hint.endswith("docker compose up -d --build orchestrator")
    assert "sidekick-base:bookworm" in hint


@pytest.mark.parametrize(
    "environ",
    [
        {"SIDEKICK_IMAGE_BUILT_WITH": BUILT, "SIDEKICK_COMPOSE_BUILD_SETTINGS": BUILT},
        {"SIDEKICK_IMAGE_BUILT_WITH": BUILT},
        {},
    ],
)
def test_the_same_or_unknown_settings_need_no_rebuild(environ: dict[str, str]) -> None:
    assert rebuild_hint(environ) is None


CHILD = """
import json, os, sys
from pathlib import Path
from sidekick.config import Config
from sidekick.container_start import Identity, become, unwritable_projects
uid, gid, own, projects = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
become(Identity(uid, gid, (gid,)), [own])
(Path(own) / "written").write_text("by the daemon")
blocked = unwritable_projects(Config(projects_root=projects))
print(json.dumps([os.getuid(), os.getgid(), os.getgroups(), str(blocked) if blocked else None]))
"""


@pytest.mark.usefixtures("as_root")
@pytest.mark.parametrize(("uid", "gid"), [(1000, 1000), (65534, 65534)])
def test_becoming_the_owner_gives_it_the_daemons_directories_and_drops_root(
    world_readable_tmp: Path, uid: int, gid: int
) -> None:
    tmp_path = world_readable_tmp
    own = owned(tmp_path / "state", 0, 0)
    (own / "old.log").write_text("from a start as root")
    projects = owned(tmp_path / "projects", 0, 0)

    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(uid), str(gid), str(own), str(projects)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout) == [uid, gid, [gid], str(projects)]
    assert {(p.stat().st_uid, p.stat().st_gid) for p in (own, own / "old.log")} == {(uid, gid)}
    assert (own / "written").stat().st_uid == uid


def test_the_first_start_makes_the_list_from_the_example_and_never_over_a_list(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "priorities.example.csv").write_text("Project,Priority,Status\ndemo,1,Pending\n")
    assert start_list_from_example(None, data) == data / "priorities.csv"
    assert (data / "priorities.csv").read_text() == "Project,Priority,Status\ndemo,1,Pending\n"
    (data / "priorities.csv").write_text("Project,Priority,Status\nmine,1,Blocked\n")
    assert start_list_from_example(None, data) is None
    assert (data / "priorities.csv").read_text() == "Project,Priority,Status\nmine,1,Blocked\n"


def test_the_list_the_config_names_is_made_from_the_example_beside_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "lists").mkdir(parents=True)
    (data / "lists" / "work.example.csv").write_text("Project,Priority,Status\n")
    config_file = data / "config.yaml"
    config_file.write_text("priority_source:\n  csv:\n    path: lists/work.csv\n")
    config = load_config(config_file, environ={})
    assert start_list_from_example(config, data) == data / "lists" / "work.csv"
    assert start_list_from_example(None, tmp_path / "empty") is None


def test_a_sheet_as_the_source_makes_no_list(tmp_path: Path) -> None:
    (tmp_path / "priorities.example.csv").write_text("Project,Priority,Status\n")
    config_file = tmp_path / "config.yaml"
    (tmp_path / "key.json").write_text("{}")
    config_file.write_text(
        "priority_source:\n  type: sheets\n  sheets:\n    spreadsheet_id: x\n"
        "    credentials_file: key.json\n"
    )
    config = load_config(config_file, environ={})
    assert start_list_from_example(config, tmp_path) is None
    assert not (tmp_path / "priorities.csv").exists()

"""Host path translation: a daemon in a container gives siblings host paths."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
from docker.api.client import APIClient

from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import PathNotTranslatable
from sidekick.containers.paths import HostPaths, MountPoint, own_container_id
from sidekick.containers.settings import ContainersConfig
from sidekick.containers.spec import Bind, ContainerSpec
from tests.containers.helpers import project_dir, raw_labels

CONTAINER_ID = "4f" * 32
MOUNTS = (
    MountPoint("/srv/sidekick/data", "/data"),
    MountPoint("/home/ana/code", "/projects"),
    MountPoint("/home/ana/code/big-repo", "/projects/big"),
    MountPoint("/var/lib/docker/volumes/state/_data", "/state", "volume"),
)


def test_a_path_under_a_mount_becomes_the_host_path_deepest_mount_first() -> None:
    paths = HostPaths(CONTAINER_ID, MOUNTS)
    assert paths.to_host("/projects/alpha") == Path("/home/ana/code/alpha")
    assert paths.to_host("/projects/big/src") == Path("/home/ana/code/big-repo/src")
    assert paths.to_host("/projects") == Path("/home/ana/code")
    assert paths.to_host("/projects/alpha/../beta/") == Path("/home/ana/code/beta")
    assert paths.to_host("/state/claude/x") == Path("/var/lib/docker/volumes/state/_data/claude/x")


def test_a_path_on_no_mount_cannot_be_translated_and_says_why() -> None:
    paths = HostPaths(CONTAINER_ID, MOUNTS)
    for inside in ("/tmp/work", "/projectsX/alpha", "/"):
        with pytest.raises(PathNotTranslatable) as refused:
            paths.to_host(inside)
        message = str(refused.value)
        assert inside in message and CONTAINER_ID in message
        assert "/home/ana/code:/projects" in message and "mount its directory" in message


def test_outside_a_container_paths_are_used_as_they_are() -> None:
    paths = HostPaths()
    assert not paths.in_container
    assert paths.to_host("/anything/at/all") == Path("/anything/at/all")


def test_own_container_is_found_from_mountinfo_or_cgroup() -> None:
    mountinfo = (
        "612 590 0:52 / / rw,relatime - overlay overlay rw\n"
        f"630 612 254:1 /var/lib/docker/containers/{CONTAINER_ID}/resolv.conf /etc/resolv.conf"
        " rw,relatime - ext4 /dev/vda1 rw\n"
    )
    assert own_container_id(mountinfo, "0::/\n") == CONTAINER_ID
    cgroup_v1 = f"12:memory:/docker/{CONTAINER_ID}\n"
    assert own_container_id("612 590 0:52 / / rw - overlay overlay rw\n", cgroup_v1) == (
        CONTAINER_ID
    )
    assert own_container_id("612 590 0:52 / / rw - ext4 /dev/vda1 rw\n", "0::/\n") is None


def test_a_real_container_finds_its_own_id_in_its_mountinfo(
    docker_api: APIClient, base_image: str, slug: str
) -> None:
    created = docker_api.create_container(
        base_image, ["cat", "/proc/self/mountinfo"], name=f"{slug}-self", labels=raw_labels()
    )
    docker_api.start(created["Id"])
    docker_api.wait(created["Id"], timeout=30)
    mountinfo = docker_api.logs(created["Id"], stderr=False).decode()
    assert own_container_id(mountinfo, "") == created["Id"]


def test_engine_translates_through_the_mounts_of_a_real_daemon_container(
    docker_api: APIClient, base_image: str, slug: str, instance: str, tmp_path: Path
) -> None:
    """A stand-in daemon container mounts the host's data at /world; a sibling writes there."""
    host_world = project_dir(tmp_path, "host-world")
    project_dir(host_world, "projects/alpha")
    stand_in = docker_api.create_container(
        base_image,
        ["sleep", "300"],
        name=f"{slug}-daemon",
        labels=raw_labels(),
        host_config=docker_api.create_host_config(binds={str(host_world): {"bind": "/world"}}),
    )
    docker_api.start(stand_in["Id"])
    engine = ContainerEngine(ContainersConfig(instance=instance, own_container=stand_in["Id"]))
    paths = engine.host_paths()
    assert paths.container == stand_in["Id"]
    assert paths.to_host("/world/projects/alpha") == host_world / "projects" / "alpha"
    inside = Path("/world/projects/alpha")
    spec = ContainerSpec(
        slug,
        "run-1",
        base_image,
        ("sh", "-c", "pwd > where.txt"),
        project_dir=inside,
        workdir=str(inside),
        binds=(Bind(inside, PurePosixPath(str(inside))),),
    )
    info = engine.run(spec)
    assert engine.wait(info.id, timeout=30) == 0
    assert (
        host_world / "projects" / "alpha" / "where.txt"
    ).read_text() == "/world/projects/alpha\n"
    with pytest.raises(PathNotTranslatable):
        engine.run(
            ContainerSpec(
                slug + "-b",
                "run-1",
                base_image,
                ("true",),
                project_dir=Path("/opt/not-mounted"),
                binds=(Bind(Path("/opt/not-mounted"), PurePosixPath("/work")),),
            )
        )

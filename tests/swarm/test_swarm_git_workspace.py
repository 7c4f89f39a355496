"""workspace: git end to end: the task clones the project's remote (a bare repository),
works on sidekick/<slug>/<run id>, and the branch arrives there with its commit."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.api.client import APIClient

from sidekick.containers.swarm import SwarmEngine
from sidekick.models import ProjectStatus, slugify
from sidekick.runners.swarm_workspace import read_pushed_branch
from tests.containers.helpers import SESSION
from tests.needs import missing
from tests.swarm.helpers import swarm_daemon, swarm_world, tick_until, unique

P = ProjectStatus
GIT_IMAGE_DOCKERFILE = """
FROM {base}
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends git >/dev/null \\
    && rm -rf /var/lib/apt/lists/*
"""


@pytest.fixture(scope="session")
def git_image(docker_api: APIClient, base_image: str) -> Iterator[str]:
    """The base image with git, built once per session (from the engine's layer cache after)."""
    tag = f"sidekick-swarm-git:{SESSION}"
    dockerfile = io.BytesIO(GIT_IMAGE_DOCKERFILE.format(base=base_image).encode())
    try:
        for _ in docker_api.build(fileobj=dockerfile, tag=tag, rm=True, forcerm=True):
            pass
        docker_api.inspect_image(tag)
    except docker.errors.DockerException as exc:
        missing(f"cannot build an image with git from {base_image}: {exc}")
    yield tag
    docker_api.remove_image(tag, force=True)


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def bare_remote(root: Path) -> Path:
    """A bare repository with one commit, as a project's hosting would have."""
    remote = root / "remote.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    seed = root / "seed"
    git("clone", "--quiet", str(remote), str(seed))
    (seed / "README").write_text("the project\n")
    git("add", "README", cwd=seed)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "start", cwd=seed)
    git("push", "--quiet", "origin", "HEAD:main", cwd=seed)
    return remote


def test_the_agents_branch_arrives_in_the_bare_remote_with_its_commit(
    git_image: str, instance: str, swarm_engine: SwarmEngine, tmp_path: Path
) -> None:
    remote = bare_remote(tmp_path)
    name = unique("repo")
    command = ["sh", "-c", 'echo "$SIDEKICK_NEXT_ACTION" > change.txt; cat README']
    profile = {"workspace": "git"}
    world = swarm_world(
        tmp_path,
        [name],
        command,
        git_image,
        instance,
        profile_extra=profile,
        rows=[f"{name},1,Pending,,,Ship it,,,"],
    )
    # The project's checkout here is a clone: its origin is the remote the task uses.
    directory = tmp_path / "projects" / name
    directory.rmdir()
    git("clone", "--quiet", str(remote), str(directory))
    daemon, store = swarm_daemon(world.config())
    tick_until(daemon, lambda: world.rows()[name].status is P.COMPLETE, timeout=90)
    (run,) = store.runs(name)
    branch = f"sidekick/{slugify(name)}/{run.run_id}"
    pushed = read_pushed_branch(Path(run.log_path))
    assert pushed is not None and pushed.branch == branch
    assert git("rev-parse", f"refs/heads/{branch}", cwd=remote) == pushed.commit
    assert git("show", f"{pushed.commit}:change.txt", cwd=remote) == "Ship it"
    assert Path(run.log_path).read_text().startswith("the project\n")
    assert not (directory / "change.txt").exists(), "the agent worked in a clone, not here"
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "sidekick",
            "runs",
            name,
            "--json",
            "--config",
            str(world.config_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    (row,) = json.loads(shown.stdout)
    assert (row["branch"], row["commit"]) == (branch, pushed.commit)


def test_a_git_profile_with_no_remote_fails_the_row_saying_so(
    git_image: str, instance: str, swarm_engine: SwarmEngine, tmp_path: Path
) -> None:
    name = unique("norepo")
    world = swarm_world(
        tmp_path,
        [name],
        ["true"],
        git_image,
        instance,
        profile_extra={"workspace": "git"},
        rows=[f"{name},1,Pending,,,,,,"],
    )
    daemon, _ = swarm_daemon(world.config())
    tick_until(daemon, lambda: world.rows()[name].status is P.FAILED)
    assert "workspace: git needs a remote" in world.rows()[name].last_update
    assert swarm_engine.services() == []

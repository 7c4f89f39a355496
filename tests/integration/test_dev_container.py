"""`docker compose run --rm dev` as a person uses it: a tmux session in which
`sidekick`, the tests and the package's Python work and the checkout is
writable, whoever owns the checkout on the host (root, UID 1000, anyone else).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.models.containers import Container

from tests.integration.compose import REPO, SESSION, Compose, exec_text
from tests.polling import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

OWNERS = [(0, 0), (1000, 1000), (4321, 4322)]
COPIED = ("pyproject.toml", "README.md", "docker-compose.yml", "src", "tests", "docker")
DONE = "/tmp/probe.done"
VENV_PROGRAMS = ("sidekick", "python", "pytest")
CONTAINER_ID = re.compile(r"\b[0-9a-f]{64}\b")
PROBE = (
    "cd /workspace && { command -v sidekick python pytest; sidekick --version;"
    " python -c 'import sidekick; print(sidekick.__file__)';"
    " touch written-in-tmux && echo checkout-writable;"
    " python -m pytest -p no:cacheprovider -q tests/test_container_start.py -k rebuild | tail -n 1;"
    f" }} > {DONE}.tmp 2>&1; mv {DONE}.tmp {DONE}"
)


def checkout_owned_by(root: Path, uid: int, gid: int) -> Path:
    """A copy of what the dev service mounts, owned by uid:gid like a host checkout."""
    root.mkdir(parents=True)
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache")
            shutil.copytree(source, root / name, ignore=ignore)
        else:
            shutil.copy2(source, root / name)
    for path in (root, *root.rglob("*")):
        os.lchown(path, uid, gid)
    return root


def run_detached_on_a_terminal(compose: Compose) -> str:
    """`docker compose run -d dev` from a terminal, as a person types it: compose gives
    the container a terminal only when it has one, and tmux needs it."""
    controller, terminal = os.openpty()
    try:
        code = subprocess.run(
            compose.argv("--profile", "tools", "run", "-d", "dev"),
            env={**compose.env, **compose.extra_env},
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            timeout=300,
            check=False,
        ).returncode
    finally:
        os.close(terminal)
    output = read_all(controller)
    assert code == 0, output
    (container_id,) = CONTAINER_ID.findall(output)
    return str(container_id)


def read_all(controller: int) -> str:
    """What was written to the terminal; reading ends with EIO once it is closed."""
    chunks = []
    try:
        while chunk := os.read(controller, 65536):
            chunks.append(chunk)
    except OSError:
        pass
    finally:
        os.close(controller)
    return b"".join(chunks).decode("utf-8", "replace").replace("\r", "")


@pytest.fixture
def dev_session(
    request: pytest.FixtureRequest,
    built: float,
    session_env: dict[str, str],
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> Iterator[tuple[Container, Path]]:
    """A running dev container over a checkout owned by the parameter's uid and gid."""
    uid, gid = request.param
    checkout = checkout_owned_by(tmp_path / "checkout", uid, gid)
    compose = Compose(f"{SESSION}-dev{uid}", session_env, file=checkout / "docker-compose.yml")
    container = docker_client.containers.get(run_detached_on_a_terminal(compose))
    try:
        yield container, checkout
    finally:
        container.remove(force=True, v=True)
        compose.down()


def tmux_runs(container: Container, uid: int) -> bool:
    code, _ = exec_text_as(container, uid, "tmux", "has-session", "-t", "dev")
    return code == 0


def exec_text_as(container: Container, uid: int, *argv: str) -> tuple[int, str]:
    return exec_text(container, *argv, user=str(uid))


@pytest.mark.parametrize("dev_session", OWNERS, ids=["root", "uid1000", "uid4321"], indirect=True)
def test_in_the_dev_tmux_session_sidekick_tests_and_python_work_and_the_checkout_is_writable(
    dev_session: tuple[Container, Path],
) -> None:
    container, checkout = dev_session
    uid = checkout.stat().st_uid
    wait_until(lambda: tmux_runs(container, uid), 60, "the dev tmux session")

    # Typed into the session like a person would, so its shell is what runs it.
    code, text = exec_text_as(container, uid, "tmux", "send-keys", "-t", "dev", PROBE, "Enter")
    assert code == 0, text
    wait_until(lambda: exec_text(container, "test", "-f", DONE)[0] == 0, 120, "the probe")

    _, output = exec_text(container, "cat", DONE)
    lines = output.splitlines()
    assert lines[:3] == [
        "/opt/sidekick/bin/sidekick",
        "/opt/sidekick/bin/python",
        "/opt/sidekick/bin/pytest",
    ], output
    assert "/workspace/src/sidekick/__init__.py" in lines and "checkout-writable" in lines
    assert lines[-1].startswith("4 passed"), output
    written = (checkout / "written-in-tmux").stat()
    assert (written.st_uid, written.st_gid) == (uid, checkout.stat().st_gid)

"""The real Claude Code CLI as a swarm job: the key reaches it only as a secret file, its
settings as secrets, and a loopback API URL through the node's host gateway."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.api.client import APIClient

from sidekick.containers.swarm import SwarmEngine
from sidekick.models import ProjectStatus
from tests.claude_cli import claude_path
from tests.containers.helpers import SESSION
from tests.needs import missing
from tests.polling import wait_until
from tests.swarm.helpers import swarm_daemon, swarm_world, tick_until, unique

P = ProjectStatus
API_KEY = "sk-ant-swarm-e2e-key"
LISTENING = re.compile(r"listening on http://[^:]+:(\d+)")


@pytest.fixture(scope="session")
def claude_image(
    docker_api: APIClient, base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The base image with the host's Claude Code binary, built once per session."""
    binary = Path(os.path.realpath(claude_path()))
    tag = f"sidekick-swarm-claude:{SESSION}"
    # The build context goes through a file, not memory: the binary is ~380 MB.
    context = tmp_path_factory.mktemp("claude-image") / "context.tar"
    dockerfile = f"FROM {base_image}\nCOPY claude /usr/local/bin/claude\n".encode()
    with tarfile.open(context, mode="w") as tar:
        tar.add(binary, arcname="claude")
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    try:
        with context.open("rb") as stream:
            for _ in docker_api.build(fileobj=stream, custom_context=True, tag=tag, rm=True):
                pass
        docker_api.inspect_image(tag)
    except docker.errors.DockerException as exc:
        missing(f"cannot build an image with Claude Code: {exc}")
    finally:
        context.unlink()
    yield tag
    docker_api.remove_image(tag, force=True)


@pytest.fixture
def mock_on_all_addresses(tmp_path: Path) -> Iterator[int]:
    """The mock Claude API where a task's host gateway reaches it; its port."""
    log = (tmp_path / "mock.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "sidekick.mock_claude", "--host", "0.0.0.0", "--port", "0"],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield listening_port(tmp_path / "mock.log")
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def listening_port(log: Path) -> int:
    found = wait_until(lambda: LISTENING.search(log.read_text()), timeout=15)
    assert found is not None
    return int(found.group(1))


def test_claude_code_runs_as_a_swarm_job_with_its_key_from_a_secret(
    claude_image: str,
    mock_on_all_addresses: int,
    instance: str,
    swarm_engine: SwarmEngine,
    docker_api: APIClient,
    tmp_path: Path,
) -> None:
    name = unique("claude")
    key_file = tmp_path / "api-key"
    key_file.write_text(API_KEY)
    world = swarm_world(
        tmp_path,
        [name],
        [],
        claude_image,
        instance,
        profile_extra={"claude": True, "command": ["claude", "-p", "--output-format", "json"]},
        rows=[f"{name},1,Pending,,,Say hello,,,"],
        api={"base_url": f"http://127.0.0.1:{mock_on_all_addresses}", "key_file": str(key_file)},
    )
    daemon, store = swarm_daemon(world.config())
    tick_until(daemon, lambda: world.rows()[name].status is not P.PENDING, timeout=60)
    (service,) = swarm_engine.services()
    spec = docker_api.inspect_service(service.id)["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert not [v for v in spec["Env"] if API_KEY in v]
    assert any(v.startswith("ANTHROPIC_BASE_URL=http://host.docker.internal:") for v in spec["Env"])
    tick_until(daemon, lambda: world.rows()[name].status is P.COMPLETE, timeout=120)
    (run,) = store.runs(name)
    assert run.exit_code == 0
    assert "Hello from the mock Claude API" in Path(run.log_path).read_text()

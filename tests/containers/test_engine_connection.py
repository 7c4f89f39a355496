"""The engine unreachable, not permitted, gone and back: typed errors and reconnection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker.api.client import APIClient

from sidekick.config import AgentProfile
from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import ContainerError, ErrorCode
from sidekick.containers.settings import ContainersConfig
from sidekick.containers.spec import ContainerSpec
from sidekick.errors import RunnerUnavailable
from sidekick.runners.container import ContainerExits, ContainerRunner
from tests.containers.helpers import engine_socket_path
from tests.containers.proxy import SocketProxy
from tests.needs import missing

NOBODY = 65534

# Run as an unprivileged user: what a daemon sees when its user lacks the socket's group.
CLIENT_SCRIPT = """
import json, sys
from sidekick.config import AgentProfile
from sidekick.containers.settings import ContainersConfig
from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import ContainerError
engine = ContainerEngine(ContainersConfig(docker_host=sys.argv[1]))
status = engine.ping()
try:
    engine.list()
except ContainerError as exc:
    print(json.dumps({"ping": status.ok, "code": exc.code.name, "message": str(exc)}))
"""


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory any user may enter (pytest's tmp_path is private to root)."""
    directory = Path(tempfile.mkdtemp(prefix="sidekick-sock-"))
    directory.chmod(0o755)
    yield directory
    for entry in directory.iterdir():
        entry.unlink()
    directory.rmdir()


def test_a_socket_path_with_no_engine_is_network_error(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/no-engine.sock"
    engine = ContainerEngine(ContainersConfig(docker_host=url, timeout=5))
    status = engine.ping()
    assert not status.ok and status.code is ErrorCode.NETWORK_ERROR
    with pytest.raises(ContainerError) as unreachable:
        engine.list()
    assert unreachable.value.code is ErrorCode.NETWORK_ERROR
    assert f"cannot reach the Docker engine at {url}" in str(unreachable.value)
    with pytest.raises(ContainerError) as creating:
        engine.run(ContainerSpec("p", "r", "img", ("true",)))
    assert creating.value.code is ErrorCode.NETWORK_ERROR


def test_runner_reports_an_unreachable_engine_as_unavailable(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/no-engine.sock"
    runner = ContainerRunner(
        ContainerEngine(ContainersConfig(docker_host=url, timeout=5)),
        AgentProfile(runner="container", image="img"),
    )
    with pytest.raises(RunnerUnavailable, match="cannot reach the Docker engine"):
        runner.list_agents()
    assert not runner.ping().ok


def test_a_socket_the_client_may_not_open_is_permission_denied_with_the_fix(
    docker_api: APIClient, public_dir: Path
) -> None:
    if os.geteuid() != 0:
        missing("needs root to run a client as another user")
    proxy = SocketProxy(public_dir / "engine.sock", engine_socket_path(), mode=0o600).start()
    try:
        as_root = ContainerEngine(ContainersConfig(docker_host=proxy.url))
        assert as_root.ping().ok  # a working engine endpoint; only the permission differs
        gid = proxy.path.stat().st_gid
        result = subprocess.run(
            [
                "setpriv",
                f"--reuid={NOBODY}",
                f"--regid={NOBODY}",
                "--clear-groups",
                sys.executable,
                "-c",
                CLIENT_SCRIPT,
                proxy.url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "HOME": str(public_dir)},
        )
    finally:
        proxy.stop()
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["ping"] is False and outcome["code"] == "PERMISSION_DENIED"
    assert f"cannot open {proxy.url}" in outcome["message"]
    assert f'group_add: ["{gid}"]' in outcome["message"]


def test_the_engine_going_away_is_network_error_and_the_same_service_reconnects(
    docker_api: APIClient, public_dir: Path
) -> None:
    proxy = SocketProxy(public_dir / "engine.sock", engine_socket_path(), mode=0o666).start()
    engine = ContainerEngine(ContainersConfig(docker_host=proxy.url, timeout=10))
    try:
        assert engine.ping().ok
        engine.list()  # a pooled connection now exists
        proxy.stop()
        with pytest.raises(ContainerError) as gone:
            engine.list()
        assert gone.value.code is ErrorCode.NETWORK_ERROR
        assert engine.ping().code is ErrorCode.NETWORK_ERROR
        proxy.start()
        assert engine.ping().ok
        assert isinstance(engine.list(), list)
    finally:
        proxy.stop()
        engine.close()


def test_exit_listener_resubscribes_after_the_engine_returns_and_rings_once_for_the_gap(
    docker_api: APIClient, public_dir: Path
) -> None:
    proxy = SocketProxy(public_dir / "engine.sock", engine_socket_path(), mode=0o666).start()
    engine = ContainerEngine(ContainersConfig(docker_host=proxy.url, timeout=10))
    rings = threading.Semaphore(0)
    exits = ContainerExits(engine, rings.release, retry_seconds=0.2)
    exits.start()
    try:
        assert not rings.acquire(timeout=1), "a quiet engine rings nothing"
        proxy.stop()
        time.sleep(0.5)
        proxy.start()
        assert rings.acquire(timeout=10), "back on the engine: one ring for what was missed"
        assert not rings.acquire(timeout=1)
    finally:
        exits.stop()
        proxy.stop()
        engine.close()

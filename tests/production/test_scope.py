from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from sidekick.containers import ContainerEngine, UnmanagedContainer
from sidekick.containers.scope import Scope, ScopedEngine
from tests.containers.helpers import BASE_IMAGE, engine_socket_path
from tests.integration.compose import SESSION
from tests.production.counting_proxy import CountingProxy
from tests.throwaway import throwaway

SERVICES = 10


class Fleet:
    """A 10-service Compose project, another Compose project, and an unlabelled container."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name, self.other = f"{SESSION}-ten", f"{SESSION}-other"
        self.production, self.elsewhere = root / "ten", root / "other"
        service = "  s{n}:\n    image: " + BASE_IMAGE + "\n    init: true\n"
        service += "    command: ['sleep', 'infinity']\n"
        for directory, count in ((self.production, SERVICES), (self.elsewhere, 1)):
            directory.mkdir()
            text = "services:\n" + "".join(service.format(n=n) for n in range(count))
            (directory / "compose.yaml").write_text(text)
        (root / "workspace").mkdir()
        self.config = root / "config.yaml"
        self.config.write_text(
            f"daemon:\n  state_dir: {root / 'state'}\nprojects:\n  Ten:\n"
            f"    directory: {root / 'workspace'}\n    production:\n"
            f"      path: {self.production}\n      compose_project: {self.name}\n"
        )
        self.stray = f"{SESSION}-stray"

    def compose(self, project: str, directory: Path, *args: str) -> None:
        argv = ["docker", "compose", "-p", project, "-f", str(directory / "compose.yaml")]
        subprocess.run([*argv, *args], check=True, capture_output=True, timeout=300)

    def sidekick(self, *args: str, docker_host: str = "") -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_HOST": docker_host} if docker_host else None
        argv = [sys.executable, "-m", "sidekick", "prod", *args, "--config", str(self.config)]
        return subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=300, env=env
        )


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, engine_ready: None) -> Iterator[Fleet]:
    fleet = Fleet(tmp_path_factory.mktemp("fleet"))
    try:
        fleet.compose(fleet.name, fleet.production, "up", "-d", "--wait")
        fleet.compose(fleet.other, fleet.elsewhere, "up", "-d", "--wait")
        # A container of no Compose project at all, removed when the module ends.
        with throwaway(["sleep", "infinity"], name=fleet.stray, init=True):
            yield fleet
    finally:
        fleet.compose(fleet.name, fleet.production, "down", "-t", "1")
        fleet.compose(fleet.other, fleet.elsewhere, "down", "-t", "1")


def test_status_of_a_ten_container_project_makes_one_list_call(
    fleet: Fleet, tmp_path: Path
) -> None:
    proxy = CountingProxy(tmp_path / "engine.sock", engine_socket_path()).start()
    try:
        result = fleet.sidekick("status", "Ten", "--json", docker_host=proxy.url)
    finally:
        proxy.stop()
    assert result.returncode == 0, result.stderr
    (project,) = json.loads(result.stdout)
    assert len(project["containers"]) == SERVICES
    assert {row["state"] for row in project["containers"]} == {"running"}
    assert proxy.count(r"GET /v[\d.]+/containers/json") == 1, proxy.requests
    assert proxy.count(r"GET /v[\d.]+/containers/[^/]+/json") == 0, proxy.requests


def _started(name: str) -> str:
    client = docker.from_env()
    try:
        return str(client.containers.get(name).attrs["State"]["StartedAt"])
    finally:
        client.close()


def test_a_restart_touches_only_the_configured_project(fleet: Fleet) -> None:
    others = [fleet.stray, f"{fleet.other}-s0-1"]
    before = {name: _started(name) for name in others}
    result = fleet.sidekick("restart", "Ten", "--yes")
    assert result.returncode == 0, result.stderr
    assert {name: _started(name) for name in others} == before


def test_the_scoped_engine_refuses_a_container_outside_its_scope(fleet: Fleet) -> None:
    engine = ContainerEngine()
    scoped = ScopedEngine(engine, Scope(frozenset({fleet.name})), "Ten")
    try:
        for outsider in (fleet.stray, f"{fleet.other}-s0-1"):
            with pytest.raises(UnmanagedContainer):
                scoped.restart(outsider)
        assert all(fleet.name in info.name for info in scoped.list())
    finally:
        engine.close()

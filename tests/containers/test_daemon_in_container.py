"""The daemon in a container launches its agent in a sibling container on the host's engine.

The daemon's container mounts the host's world directory at a different path
(/world) and the engine's socket; the agent's container must get the host path
as its bind source (translated through the daemon's own mounts), write into
the project on the host, and the row must become Complete.

The orchestrator image is the project's production image when
SIDEKICK_ORCHESTRATOR_IMAGE names one; otherwise a small image is built here
from the local base image with the checkout installed (needs PyPI, like every
image build of the project).
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from docker.api.client import APIClient

from sidekick.models import ProjectStatus, agent_key
from sidekick.priorities.csv_file import CsvPrioritySource
from tests.containers.helpers import SESSION, engine_socket_path, raw_labels
from tests.daemon.world import HEADER
from tests.needs import missing
from tests.polling import wait_until

REPO = Path(__file__).resolve().parents[2]
BUILT_TAG = f"sidekick-tests-orchestrator:{SESSION}"
INSIDE = "/world"

DOCKERFILE = """
FROM {base}
RUN python3 -m venv /opt/sidekick
ENV PATH=/opt/sidekick/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY requirements/runtime.txt /deps/
RUN pip install --quiet --require-hashes -r /deps/runtime.txt
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN pip install --quiet --no-deps /src
"""

DAEMON_SCRIPT = """
import logging, sys
from sidekick.config import load_config
from sidekick.daemon import Daemon, Parts, build_source
from sidekick.runners.container import ContainerRunner
from sidekick.state import StateStore
logging.basicConfig(level=logging.INFO)
config = load_config(sys.argv[1], environ={})
store = StateStore(config.daemon.state_dir / "sidekick.db")
Daemon(config, Parts(build_source(config), ContainerRunner.from_config(config), store)).run()
"""


def build_context(base_image: str) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in ("pyproject.toml", "README.md", "src", "requirements/runtime.txt"):
            tar.add(REPO / name, arcname=name, filter=_no_caches)
        dockerfile = DOCKERFILE.format(base=base_image).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    buffer.seek(0)
    return buffer


def _no_caches(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if "__pycache__" in info.name or info.name.endswith(".egg-info") else info


@pytest.fixture(scope="module")
def orchestrator_image(docker_api: APIClient, base_image: str) -> Iterator[str]:
    named = os.environ.get("SIDEKICK_ORCHESTRATOR_IMAGE")
    if named:
        yield named
        return
    try:
        for line in docker_api.build(
            fileobj=build_context(base_image),
            custom_context=True,
            tag=BUILT_TAG,
            labels=raw_labels(),
            rm=True,
            forcerm=True,
            decode=True,
        ):
            if "error" in line:
                missing(f"cannot build the orchestrator image: {line['error'].strip()}")
        yield BUILT_TAG
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_api.remove_image(BUILT_TAG, force=True)


def write_world(root: Path, name: str, image: str, instance: str) -> None:
    project = root / "projects" / name
    project.mkdir(parents=True)
    agent = [
        "sh",
        "-c",
        'echo "$SIDEKICK_NEXT_ACTION" > note.txt; while [ ! -e go ]; do sleep 0.1; done; echo done',
    ]
    settings = {
        "projects": {name: f"{INSIDE}/projects/{name}"},
        "priority_source": {"type": "csv", "csv": {"path": f"{INSIDE}/priorities.csv"}},
        "daemon": {"state_dir": f"{INSIDE}/state", "reconcile_interval": 2},
        "agents": {
            "default": {"runner": "container", "image": image, "command": agent, "claude": False}
        },
        "containers": {"instance": instance},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(settings))
    (root / "priorities.csv").write_text(HEADER + f"{name},1,Pending,,,Ship it,,,\n")


def row_status(root: Path, name: str) -> ProjectStatus:
    return CsvPrioritySource(root / "priorities.csv").load().by_name()[name].status


def test_daemon_in_a_container_runs_its_agent_as_a_sibling_writing_to_the_host(
    docker_api: APIClient, base_image: str, orchestrator_image: str, instance: str, tmp_path: Path
) -> None:
    name = f"inside-{uuid.uuid4().hex[:6]}"
    write_world(tmp_path, name, base_image, instance)
    socket = engine_socket_path()
    daemon = docker_api.create_container(
        orchestrator_image,
        ["python", "-c", DAEMON_SCRIPT, f"{INSIDE}/config.yaml"],
        entrypoint=[],
        name=f"{name}-daemon",
        labels=raw_labels(),
        user="0:0",
        host_config=docker_api.create_host_config(
            binds={str(tmp_path): {"bind": INSIDE}, socket: {"bind": "/var/run/docker.sock"}}
        ),
    )
    docker_api.start(daemon["Id"])
    try:
        check_sibling(docker_api, daemon["Id"], name, instance, tmp_path)
    finally:
        docker_api.remove_container(daemon["Id"], force=True)


def check_sibling(
    docker_api: APIClient, daemon_id: str, name: str, instance: str, root: Path
) -> None:
    key = agent_key(name)
    project = root / "projects" / name
    try:
        agent = wait_until(lambda: _agent(docker_api, key, instance), timeout=60)
    except AssertionError:
        raise AssertionError(docker_api.logs(daemon_id).decode()[-3000:]) from None
    mounts = {m["Destination"]: m["Source"] for m in agent["Mounts"]}
    project_inside = f"{INSIDE}/projects/{name}"
    assert mounts[project_inside] == str(project)
    assert agent["Config"]["WorkingDir"] == project_inside
    assert agent["Config"]["Labels"]["sidekick.managed"] == "true"
    assert agent["HostConfig"]["Privileged"] is False
    wait_until((project / "note.txt").exists, timeout=30)
    wait_until(lambda: row_status(root, name) is ProjectStatus.IN_PROGRESS, timeout=30)
    (project / "go").touch()
    wait_until(lambda: row_status(root, name) is ProjectStatus.COMPLETE, timeout=60)
    assert (project / "note.txt").read_text() == "Ship it\n"
    wait_until(lambda: _agent(docker_api, key, instance) is None, timeout=30)
    logs = docker_api.logs(daemon_id).decode()
    assert f"the daemon runs in container {daemon_id[:12]}" in logs


def _agent(docker_api: APIClient, key: str, instance: str) -> Any:
    rows = docker_api.containers(
        all=True, filters={"name": key, "label": [f"sidekick.instance={instance}"]}
    )
    exact = [r for r in rows if f"/{key}" in r["Names"]]
    if not exact:
        return None
    try:
        return docker_api.inspect_container(exact[0]["Id"])
    except docker.errors.NotFound:
        return None  # reaped between the list and the inspect

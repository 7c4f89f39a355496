"""The daemon with a ``runner: swarm`` profile on a single-node swarm of the test engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from docker.api.client import APIClient

from sidekick.containers.swarm import SwarmEngine
from sidekick.models import ProjectStatus, slugify
from tests.swarm.helpers import swarm_daemon, swarm_world, tick_until, unique

P = ProjectStatus


def test_a_swarm_job_turns_its_row_complete_keeps_its_logs_and_is_removed(
    base_image: str, instance: str, swarm_engine: SwarmEngine, tmp_path: Path
) -> None:
    name = unique("alpha")
    command = [
        "sh",
        "-c",
        'echo working on "$SIDEKICK_PROJECT"; echo "$SIDEKICK_NEXT_ACTION" > note.txt',
    ]
    world = swarm_world(
        tmp_path, [name], command, base_image, instance, rows=[f"{name},1,Pending,,,Ship it,,,"]
    )
    daemon, store = swarm_daemon(world.config())
    tick_until(daemon, lambda: world.rows()[name].status is P.COMPLETE)
    assert (tmp_path / "projects" / name / "note.txt").read_text() == "Ship it\n"
    (run,) = store.runs(name)
    assert (run.state, run.exit_code) == ("finished", 0)
    assert Path(run.log_path).read_text() == f"working on {name}\n"
    tick_until(daemon, lambda: swarm_engine.services(slugify(name)) == [])
    assert swarm_engine.secrets(slugify(name)) == []


def test_a_failed_swarm_job_fails_its_row_with_the_exit_code_and_last_line(
    base_image: str, instance: str, swarm_engine: SwarmEngine, tmp_path: Path
) -> None:
    name = unique("beta")
    failing = ["sh", "-c", "echo step one; echo 'boom: disk full' >&2; exit 3"]
    world = swarm_world(
        tmp_path, [name], failing, base_image, instance, rows=[f"{name},1,Pending,,,,,,"]
    )
    daemon, store = swarm_daemon(world.config())
    tick_until(daemon, lambda: world.rows()[name].status is P.FAILED)
    assert "exit 3: boom: disk full" in world.rows()[name].last_update
    (run,) = store.runs(name)
    assert run.exit_code == 3 and "boom" in run.reason
    tick_until(daemon, lambda: swarm_engine.services(slugify(name)) == [])


def test_a_job_whose_image_is_missing_fails_its_row_saying_so(
    instance: str, swarm_engine: SwarmEngine, docker_api: APIClient, tmp_path: Path
) -> None:
    name = unique("gamma")
    world = swarm_world(
        tmp_path,
        [name],
        ["true"],
        "sidekick-no-such-image:never",
        instance,
        rows=[f"{name},1,Pending,,,,,,"],
    )
    daemon, store = swarm_daemon(world.config())
    tick_until(daemon, lambda: world.rows()[name].status is P.FAILED)
    (run,) = store.runs(name)
    assert run.exit_code == 125
    assert "No such image" in Path(run.log_path).read_text()


@pytest.mark.parametrize(
    ("gpu", "profile", "needs"),
    [
        ("yes", {}, "needs node.labels.sidekick.gpu==true;"),
        ("no", {"reserve_memory": "65536g"}, "needs 65536 GiB of memory;"),
        ("no", {"constraints": ["node.labels.zone==mars"]}, "needs node.labels.zone==mars;"),
        ("yes", {"gpu_resources": {"NVIDIA-GPU": 1}}, "and 1 NVIDIA-GPU;"),
    ],
)
def test_a_row_no_node_can_take_stays_pending_and_says_why_in_last_update(
    base_image: str,
    instance: str,
    swarm_engine: SwarmEngine,
    tmp_path: Path,
    gpu: str,
    profile: dict[str, Any],
    needs: str,
) -> None:
    name = unique("nowhere")
    world = swarm_world(
        tmp_path,
        [name],
        ["true"],
        base_image,
        instance,
        profile_extra=profile,
        rows=[f"{name},1,Pending,,,,,{gpu},"],
    )
    daemon, _ = swarm_daemon(world.config())
    tick_until(daemon, lambda: "no swarm node can take it" in world.rows()[name].last_update)
    row = world.rows()[name]
    assert row.status is P.PENDING
    assert "waiting to start" in row.last_update
    assert needs in row.last_update
    assert swarm_engine.services() == []


def test_a_row_removed_from_the_list_stops_its_running_job_for_good(
    base_image: str, instance: str, swarm_engine: SwarmEngine, docker_api: APIClient, tmp_path: Path
) -> None:
    name = unique("dropped")
    command = ["sh", "-c", "echo working; while :; do sleep 0.1; done"]
    world = swarm_world(
        tmp_path, [name], command, base_image, instance, rows=[f"{name},1,Pending,,,,,,"]
    )
    daemon, store = swarm_daemon(world.config())
    tick_until(daemon, lambda: world.rows()[name].status is P.IN_PROGRESS)
    world.save([])
    tick_until(daemon, lambda: not store.active_runs())
    assert swarm_engine.services() == []
    job = {"label": [f"com.docker.swarm.service.name=sidekick-{slugify(name)}"]}
    assert docker_api.containers(filters=job) == []

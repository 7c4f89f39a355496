"""The swarm runner's pure pieces: task endings, times, node resources, names, markers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sidekick.containers.swarm_records import NodeInfo, TaskInfo, parse_time
from sidekick.runners.swarm import ENGINE_FAILURE_EXIT, task_exit_code
from sidekick.runners.swarm_job import service_name
from sidekick.runners.swarm_placement import no_taker_reason, placement_for, satisfies, takers
from sidekick.runners.swarm_workspace import PushedBranch, pushed_branch


def _task(state: str, container: str = "c1", code: int = 0, err: str = "") -> TaskInfo:
    status = {
        "State": state,
        "Err": err,
        "ContainerStatus": {"ContainerID": container, "ExitCode": code},
    }
    return TaskInfo.from_api({"ID": "t", "Status": status, "NodeID": "n"})


@pytest.mark.parametrize(
    ("task", "code"),
    [
        (_task("complete"), 0),
        (_task("failed", code=3, err="task: non-zero exit (3)"), 3),
        (_task("failed", code=137), 137),
        (_task("rejected", container="", err="No such image: x"), ENGINE_FAILURE_EXIT),
        (_task("failed", container="", err="starting container failed"), ENGINE_FAILURE_EXIT),
        (_task("shutdown", code=143), 143),
        (_task("orphaned", container=""), ENGINE_FAILURE_EXIT),
    ],
)
def test_every_way_a_job_ends_has_an_exit_code(task: TaskInfo, code: int) -> None:
    assert task.ended
    assert task_exit_code(task) == code


def test_a_task_without_a_container_has_no_exit_code_of_its_own() -> None:
    assert _task("rejected", container="", code=0).exit_code is None


@pytest.mark.parametrize("state", ["new", "pending", "assigned", "preparing", "running"])
def test_a_task_on_its_way_or_running_has_not_ended(state: str) -> None:
    assert not _task(state).ended


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T10:05:44.747271868Z", datetime(2026, 11, 30, 10, 5, 44, 747271, UTC)),
        ("2026-11-30T10:05:44Z", datetime(2026, 11, 30, 10, 5, 44, tzinfo=UTC)),
        ("2026-11-30T10:05:44.5Z", datetime(2026, 11, 30, 10, 5, 44, 500000, UTC)),
        ("", None),
        ("yesterday", None),
    ],
)
def test_swarm_times_with_nanoseconds_are_read(text: str, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def _node(labels: dict[str, str], generic: list[dict[str, object]] | None = None) -> NodeInfo:
    resources = {"NanoCPUs": 4_000_000_000, "MemoryBytes": 8 << 30, "GenericResources": generic}
    return NodeInfo.from_api(
        {
            "ID": "node1",
            "Description": {"Hostname": "gpu-box", "Resources": resources},
            "Spec": {"Role": "worker", "Availability": "active", "Labels": labels},
            "Status": {"State": "ready"},
        }
    )


def test_named_and_discrete_generic_resources_are_counted() -> None:
    node = _node(
        {},
        [
            {"NamedResourceSpec": {"Kind": "NVIDIA-GPU", "Value": "GPU-1"}},
            {"NamedResourceSpec": {"Kind": "NVIDIA-GPU", "Value": "GPU-2"}},
            {"DiscreteResourceSpec": {"Kind": "SSD", "Value": 3}},
        ],
    )
    assert node.generic_resources == {"NVIDIA-GPU": 2, "SSD": 3}


@pytest.mark.parametrize(
    ("constraint", "met"),
    [
        ("node.labels.sidekick.gpu==true", True),
        ("node.labels.sidekick.gpu!=true", False),
        ("node.labels.zone==eu", False),
        ("node.labels.zone!=eu", True),
        ("node.role==worker", True),
        ("node.hostname != gpu-box", False),
        ("engine.labels.os==linux", True),
        ("node.platform.os==linux", True),
    ],
)
def test_constraints_are_judged_only_where_sidekick_knows_the_field(
    constraint: str, met: bool
) -> None:
    assert satisfies(_node({"sidekick.gpu": "true"}), constraint) is met


def test_reservations_and_generic_resources_beyond_every_node_find_no_taker() -> None:
    node = _node({"sidekick.gpu": "true"}, [{"DiscreteResourceSpec": {"Kind": "GPU", "Value": 1}}])
    assert takers([node], placement_for(True, (), {"GPU": 1}, (2_000_000_000, 1 << 30)))
    too_big = placement_for(True, (), {"GPU": 2}, (8_000_000_000, 0))
    assert takers([node], too_big) == []
    reason = no_taker_reason([node], too_big)
    assert reason.startswith("no swarm node can take it (needs node.labels.sidekick.gpu==true")
    assert "8 CPUs" in reason and "2 GPU" in reason and "gpu-box worker ready/active" in reason


def test_a_gpu_row_never_asks_for_the_gpu_label_twice() -> None:
    chosen = placement_for(True, ("node.labels.sidekick.gpu==true",), {})
    assert chosen.constraints == ("node.labels.sidekick.gpu==true",)
    assert placement_for(False, ("a==b",), {"GPU": 1}).generic_resources == {}


@pytest.mark.parametrize("length", [1, 54, 63, 64, 73, 200])
def test_service_names_fit_swarm_and_stay_distinct(length: int) -> None:
    key = "sidekick-" + "a" * length
    name = service_name(key)
    assert len(name) <= 63
    assert name == service_name(key)
    assert name != service_name(key + "b")
    assert (name == key) is (len(key) <= 63)


def test_the_last_branch_marker_of_a_log_names_the_pushed_branch() -> None:
    log = (
        b"sidekick-branch: from the agent itself, not a marker\n"
        b"work\nsidekick-branch: sidekick/alpha/r1 0123abcd0123abcd\n\xff\n"
    )
    assert pushed_branch(log) == PushedBranch("sidekick/alpha/r1", "0123abcd0123abcd")
    assert pushed_branch(b"no marker\n") is None

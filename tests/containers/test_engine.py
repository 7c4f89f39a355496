"""The container lifecycle service against the real Docker engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from docker.api.client import APIClient

from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import (
    ContainerError,
    ErrorCode,
    UnmanagedContainer,
    UnsafeContainerSpec,
)
from sidekick.containers.settings import ContainersConfig
from sidekick.containers.spec import Bind, ContainerSpec, Limits, container_name
from sidekick.containers.streams import ContainerEvent
from tests.containers.helpers import project_dir, raw_labels
from tests.polling import wait_until


def spec_for(slug: str, image: str, command: tuple[str, ...], **fields: Any) -> ContainerSpec:
    return ContainerSpec(project=slug, run_id="run-1", image=image, command=command, **fields)


def sleeper(slug: str, image: str) -> ContainerSpec:
    return spec_for(slug, image, ("sleep", "300"))


def state_of(docker_api: APIClient, name: str) -> str:
    return str(docker_api.inspect_container(name)["State"]["Status"])


def test_container_carries_labels_read_only_secrets_and_the_profile_limits(
    engine: ContainerEngine, docker_api: APIClient, base_image: str, slug: str, tmp_path: Path
) -> None:
    project = project_dir(tmp_path)
    secret = tmp_path / "token.txt"
    secret.write_text("s3cret\n")
    script = "cat /run/secrets/token; echo tampered > /run/secrets/token || echo read-only"
    spec = spec_for(
        slug,
        base_image,
        ("sh", "-c", script),
        project_dir=project,
        binds=(Bind(project, PurePosixPath(str(project))),),
        secrets={"token": secret},
        limits=Limits(cpus=0.5, memory="64m", pids=32),
        network="none",
        restart_policy="no",
    )
    info = engine.run(spec)
    assert engine.wait(info.id, timeout=30) == 0
    raw = docker_api.inspect_container(info.id)
    labels = raw["Config"]["Labels"]
    assert labels["sidekick.managed"] == "true"
    assert labels["sidekick.project"] == slug and labels["sidekick.run"] == "run-1"
    assert raw["Name"] == f"/sidekick-{slug}"
    host = raw["HostConfig"]
    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["PidsLimit"] == 32
    assert host["Privileged"] is False and host["NetworkMode"] == "none"
    assert host["PidMode"] in ("", "private") and host["UsernsMode"] == ""
    assert host["IpcMode"] != "host" and host["RestartPolicy"]["Name"] == "no"
    mounts = {m["Destination"]: m for m in raw["Mounts"]}
    assert mounts["/run/secrets/token"]["RW"] is False
    assert mounts["/run/secrets/token"]["Source"] == str(secret)
    assert mounts[str(project)]["RW"] is True
    logs = engine.logs(info.id)
    assert logs.stdout.splitlines()[0] == b"s3cret"
    assert b"read-only" in logs.stdout and b"Read-only file system" in logs.stderr
    assert secret.read_text() == "s3cret\n"


def test_mounts_outside_the_project_secrets_and_allowed_paths_are_refused(
    tmp_path: Path,
) -> None:
    # An engine at a socket that does not exist: a refusal must come before any call.
    engine = ContainerEngine(ContainersConfig(docker_host=f"unix://{tmp_path}/none.sock"))
    project = project_dir(tmp_path)
    outside = project_dir(tmp_path, "elsewhere")
    (project / "escape").symlink_to(outside)
    cases = {
        "outside": Bind(outside, PurePosixPath("/x")),
        "symlink out of the project": Bind(project / "escape", PurePosixPath("/x")),
        "the root": Bind(project, PurePosixPath("/")),
    }
    for reason, bind in cases.items():
        spec = spec_for("p", "img", ("true",), project_dir=project, binds=(bind,))
        with pytest.raises(UnsafeContainerSpec) as refused:
            engine.create(spec)
        assert "mount" in str(refused.value), reason
    with pytest.raises(UnsafeContainerSpec, match="host's network namespace"):
        engine.create(spec_for("p", "img", ("true",), network="host"))
    with pytest.raises(UnsafeContainerSpec, match="not a size"):
        engine.create(spec_for("p", "img", ("true",), limits=Limits(memory="lots")))
    allowed = ContainerEngine(
        ContainersConfig(docker_host=f"unix://{tmp_path}/none.sock", allowed_paths=(outside,))
    )
    spec = spec_for("p", "img", ("true",), project_dir=project, binds=(cases["outside"],))
    with pytest.raises(ContainerError) as unreachable:
        allowed.create(spec)
    assert unreachable.value.code is ErrorCode.NETWORK_ERROR  # got as far as the engine


def test_unlabelled_container_with_the_key_name_is_never_touched(
    engine: ContainerEngine, docker_api: APIClient, base_image: str, slug: str
) -> None:
    name = container_name(slug)
    foreign = docker_api.create_container(
        base_image, ["sleep", "300"], name=name, labels=raw_labels()
    )
    docker_api.start(foreign["Id"])
    assert [c for c in engine.list() if c.name == name] == []
    attempts: tuple[Callable[[], None], ...] = (
        lambda: engine.stop(name),
        lambda: engine.remove(name, force=True),
        lambda: engine.restart(name),
        lambda: engine.rename(name, name + "-moved"),
    )
    for attempt in attempts:
        with pytest.raises(UnmanagedContainer, match=r"containers\.managed_names"):
            attempt()
    with pytest.raises(ContainerError) as duplicate:
        engine.run(sleeper(slug, base_image))
    assert duplicate.value.code is ErrorCode.ALREADY_EXISTS
    after = docker_api.inspect_container(name)
    assert after["Id"] == foreign["Id"] and after["State"]["Running"] is True
    assert after["RestartCount"] == 0 and after["Name"] == f"/{name}"


def test_a_container_named_in_the_config_may_be_stopped_without_the_label(
    docker_api: APIClient, base_image: str, slug: str, instance: str
) -> None:
    name = f"{slug}-configured"
    created = docker_api.create_container(
        base_image, ["sleep", "300"], name=name, labels=raw_labels()
    )
    docker_api.start(created["Id"])
    engine = ContainerEngine(ContainersConfig(instance=instance, managed_names=(name,)))
    engine.stop(name, grace=1)
    assert state_of(docker_api, name) == "exited"


def test_duplicate_start_fails_atomically_with_already_exists(
    engine: ContainerEngine, docker_api: APIClient, base_image: str, slug: str
) -> None:
    first = engine.run(sleeper(slug, base_image))
    with pytest.raises(ContainerError) as duplicate:
        engine.run(sleeper(slug, base_image))
    assert duplicate.value.code is ErrorCode.ALREADY_EXISTS
    assert duplicate.value.project == slug and "already in use" in duplicate.value.engine_message
    (only,) = engine.list(slug)
    assert only.id == first.id and only.state == "running"


def test_stopping_a_stopped_and_starting_a_running_container_are_successes(
    engine: ContainerEngine, docker_api: APIClient, base_image: str, slug: str
) -> None:
    info = engine.run(sleeper(slug, base_image))
    engine.start(info.id)
    assert state_of(docker_api, info.id) == "running"
    engine.stop(info.name, grace=1)
    engine.stop(info.name, grace=1)
    assert state_of(docker_api, info.id) == "exited"
    engine.start(info.name)
    engine.start(info.name)
    assert state_of(docker_api, info.id) == "running"


def test_missing_container_is_not_found(engine: ContainerEngine, slug: str) -> None:
    for attempt in (
        lambda: engine.inspect(container_name(slug), slug),
        lambda: engine.stop(container_name(slug), project=slug),
        lambda: engine.logs(container_name(slug), project=slug),
    ):
        with pytest.raises(ContainerError) as gone:
            attempt()
        assert gone.value.code is ErrorCode.NOT_FOUND and gone.value.project == slug
        assert "No such container" in gone.value.engine_message


def test_missing_image_is_image_not_found(engine: ContainerEngine, slug: str) -> None:
    with pytest.raises(ContainerError) as missing:
        engine.run(spec_for(slug, "sidekick-absent-image:never-built", ("true",)))
    assert missing.value.code is ErrorCode.IMAGE_NOT_FOUND
    assert "No such image" in missing.value.engine_message
    assert engine.list(slug) == []


def test_missing_entrypoint_binary_is_start_failed_and_frees_the_name(
    engine: ContainerEngine, base_image: str, slug: str
) -> None:
    with pytest.raises(ContainerError) as failed:
        engine.run(spec_for(slug, base_image, ("/no/such/agent",), init=False))
    assert failed.value.code is ErrorCode.START_FAILED
    assert "/no/such/agent" in failed.value.engine_message
    assert engine.list(slug) == []
    engine.run(spec_for(slug, base_image, ("true",)))  # the name is free again


def test_missing_bind_source_is_start_failed(
    engine: ContainerEngine, base_image: str, slug: str, tmp_path: Path
) -> None:
    project = tmp_path / "deleted-project"
    bind = Bind(project, PurePosixPath("/work"))
    spec = spec_for(slug, base_image, ("true",), project_dir=project, binds=(bind,))
    with pytest.raises(ContainerError) as failed:
        engine.run(spec)
    assert failed.value.code is ErrorCode.START_FAILED
    assert "does not exist" in failed.value.engine_message
    assert engine.list(slug) == []


def test_with_an_init_process_a_missing_binary_is_exit_127_with_the_reason_logged(
    engine: ContainerEngine, base_image: str, slug: str
) -> None:
    info = engine.run(spec_for(slug, base_image, ("/no/such/agent",)))
    assert engine.wait(info.id, timeout=30) == 127
    assert b"/no/such/agent" in engine.logs(info.id).stderr


def test_removing_a_running_container_without_force_is_stop_failed(
    engine: ContainerEngine, docker_api: APIClient, base_image: str, slug: str
) -> None:
    info = engine.run(sleeper(slug, base_image))
    with pytest.raises(ContainerError) as refused:
        engine.remove(info.name, project=slug)
    assert refused.value.code is ErrorCode.STOP_FAILED
    assert "running container" in refused.value.engine_message
    assert state_of(docker_api, info.id) == "running"
    engine.remove(info.name, force=True)
    assert engine.list(slug) == []


def test_logs_keep_stdout_and_stderr_apart_with_tail_and_since(
    engine: ContainerEngine, base_image: str, slug: str
) -> None:
    script = "echo out1; echo err1 >&2; sleep 0.2; echo out2; sleep 0.2; echo err2 >&2"
    info = engine.run(spec_for(slug, base_image, ("sh", "-c", script)))
    assert engine.wait(info.id, timeout=30) == 0
    logs = engine.logs(info.id)
    assert logs.stdout == b"out1\nout2\n"
    assert logs.stderr == b"err1\nerr2\n"
    assert logs.combined.endswith(b"err2\n") and len(logs.combined) == 20
    last_two = engine.logs(info.id, tail=2)
    assert (last_two.stdout, last_two.stderr) == (b"out2\n", b"err2\n")
    assert engine.logs(info.id, since=time.time() + 3600).combined == b""


def test_follow_streams_output_as_it_comes_until_the_container_stops(
    engine: ContainerEngine, base_image: str, slug: str, tmp_path: Path
) -> None:
    project = project_dir(tmp_path)
    script = "echo first; while [ ! -e go ]; do sleep 0.05; done; echo second >&2"
    spec = spec_for(
        slug,
        base_image,
        ("sh", "-c", script),
        project_dir=project,
        workdir=str(project),
        binds=(Bind(project, PurePosixPath(str(project))),),
    )
    info = engine.run(spec)
    stream = engine.follow_logs(info.id, tail=None)
    chunks = iter(stream)
    assert next(chunks).data == b"first\n"  # arrives while the agent still runs
    (project / "go").touch()
    rest = list(chunks)
    assert [(c.stream, c.data) for c in rest] == [("stderr", b"second\n")]
    stream.close()


def test_wait_gives_the_exit_code_or_none_when_time_runs_out(
    engine: ContainerEngine, base_image: str, slug: str
) -> None:
    running = engine.run(sleeper(slug, base_image))
    assert engine.wait(running.id, timeout=0.5) is None
    engine.stop(running.id, grace=5)
    # 143: the init process passed SIGTERM on and sleep died of it, before any SIGKILL.
    assert engine.wait(running.id, timeout=30) == 143
    inspected = engine.inspect(running.id)
    assert inspected.ended and inspected.exit_code == 143


def test_events_report_state_changes_of_managed_containers_only(
    engine: ContainerEngine, docker_api: APIClient, base_image: str, slug: str
) -> None:
    began = time.time()
    info = engine.run(spec_for(slug, base_image, ("sh", "-c", "exit 3")))
    engine.wait(info.id, timeout=30)
    foreign = docker_api.create_container(
        base_image, ["true"], name=f"{slug}-foreign", labels=raw_labels()
    )
    docker_api.start(foreign["Id"])
    docker_api.wait(foreign["Id"], timeout=30)
    events = list(engine.events(since=began, until=time.time() + 1))
    assert {e.id for e in events} == {info.id}
    actions = [e.action for e in events]
    assert actions.index("create") < actions.index("start") < actions.index("die")
    (died,) = [e for e in events if e.action == "die"]
    assert died.exit_code == 3 and died.project == slug and died.name == info.name


def test_live_event_stream_delivers_as_it_happens_and_closes_from_another_thread(
    engine: ContainerEngine, base_image: str, slug: str
) -> None:
    stream = engine.events(project=slug)
    seen: list[ContainerEvent] = []
    ended = threading.Event()

    def read() -> None:
        try:
            seen.extend(stream)
        finally:
            ended.set()

    threading.Thread(target=read, daemon=True).start()
    info = engine.run(spec_for(slug, base_image, ("true",)))
    wait_until(lambda: any(e.action == "die" for e in seen))
    stream.close()
    assert ended.wait(5)
    assert all(e.id == info.id for e in seen)


def test_restart_gives_a_managed_container_a_new_start(
    engine: ContainerEngine, base_image: str, slug: str
) -> None:
    info = engine.run(sleeper(slug, base_image))
    before = engine.inspect(info.id).started_at
    engine.restart(info.name, grace=0)
    after = engine.inspect(info.id)
    assert after.state == "running" and before is not None and after.started_at is not None
    assert after.started_at > before


def test_listing_filters_by_label_on_the_engine_and_reads_exit_codes(
    engine: ContainerEngine, base_image: str, slug: str
) -> None:
    engine.run(spec_for(slug, base_image, ("sh", "-c", "exit 7")))
    other = f"{slug}-b"
    engine.run(sleeper(other, base_image))
    wait_until(lambda: engine.list(slug)[0].ended)
    by_project = {c.project: c for c in engine.list()}
    assert set(by_project) == {slug, other}
    assert by_project[slug].exit_code == 7 and by_project[other].exit_code is None
    assert by_project[other].alive and by_project[slug].created_at is not None

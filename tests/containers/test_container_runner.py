"""ContainerRunner against the real engine: start, list, exit, logs, reap, adopt."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from docker.api.client import APIClient

from sidekick.config import AgentProfile
from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import UnmanagedContainer
from sidekick.containers.settings import ContainersConfig
from sidekick.containers.spec import ContainerSpec, container_name
from sidekick.errors import AgentAlreadyRunning, RunnerError
from sidekick.runners.base import LaunchSpec, exit_status_path, read_exit_status
from sidekick.runners.container import ContainerExits, ContainerRunner
from tests.containers.helpers import project_dir, raw_labels
from tests.polling import wait_until


def profile(image: str | None, **fields: Any) -> AgentProfile:
    return AgentProfile(runner="container", image=image, **fields)


def launch(
    slug: str, root: Path, argv: tuple[str, ...], env: dict[str, str] | None = None
) -> LaunchSpec:
    return LaunchSpec(
        key=container_name(slug),
        project=slug,
        run_id="run-1",
        argv=argv,
        cwd=project_dir(root),
        log_path=root / "state" / "logs" / slug / "run-1.log",
        env=env or {},
    )


def finished(runner: ContainerRunner, key: str) -> bool:
    agent = runner.list_agents().get(key)
    return agent is not None and agent.finished


def test_agent_starts_is_listed_exits_and_is_reaped_with_its_code_and_logs_kept(
    engine: ContainerEngine, docker_api: APIClient, base_image: str, slug: str, tmp_path: Path
) -> None:
    runner = ContainerRunner(engine, profile(base_image, memory="128m", pids_limit=64))
    script = "echo working; while [ ! -e go ]; do sleep 0.05; done; echo done >&2; exit 3"
    spec = launch(slug, tmp_path, ("sh", "-c", script))
    runner.start(spec)
    agent = runner.list_agents()[spec.key]
    assert agent.run_id == "run-1" and not agent.finished and agent.started_at is not None
    (spec.cwd / "go").touch()
    wait_until(lambda: finished(runner, spec.key))
    assert runner.list_agents()[spec.key].exit_code == 3
    assert spec.log_path.read_text() == "working\ndone\n"
    assert read_exit_status(spec.log_path) == 3
    runner.reap(spec.key)
    assert spec.key not in runner.list_agents()
    assert docker_api.containers(all=True, filters={"name": spec.key}) == []
    runner.reap(spec.key)  # gone is success


def test_a_kept_container_is_renamed_away_so_the_next_run_can_start(
    engine: ContainerEngine, docker_api: APIClient, base_image: str, slug: str, tmp_path: Path
) -> None:
    runner = ContainerRunner(engine, profile(base_image, remove_after=False))
    spec = launch(slug, tmp_path, ("sh", "-c", "echo first"))
    runner.start(spec)
    wait_until(lambda: finished(runner, spec.key))
    runner.reap(spec.key)
    kept = docker_api.inspect_container(f"{spec.key}-run-1")
    assert kept["State"]["ExitCode"] == 0
    assert spec.key not in runner.list_agents()
    runner.start(launch(slug, tmp_path, ("sh", "-c", "echo second")))
    assert set(runner.list_agents()) == {spec.key}


def test_a_second_start_is_already_running_and_leaves_one_container(
    engine: ContainerEngine, base_image: str, slug: str, tmp_path: Path
) -> None:
    runner = ContainerRunner(engine, profile(base_image))
    spec = launch(slug, tmp_path, ("sleep", "300"))
    runner.start(spec)
    with pytest.raises(AgentAlreadyRunning):
        runner.start(spec)
    assert [c.name for c in engine.list(slug)] == [spec.key]


def test_a_foreign_container_holding_the_key_is_refused_not_adopted_or_touched(
    engine: ContainerEngine, docker_api: APIClient, base_image: str, slug: str, tmp_path: Path
) -> None:
    key = container_name(slug)
    foreign = docker_api.create_container(
        base_image, ["sleep", "300"], name=key, labels=raw_labels()
    )
    docker_api.start(foreign["Id"])
    runner = ContainerRunner(engine, profile(base_image))
    assert key not in runner.list_agents()
    with pytest.raises(UnmanagedContainer, match="sidekick did not create"):
        runner.start(launch(slug, tmp_path, ("true",)))
    attempts: tuple[Callable[[], object], ...] = (
        lambda: runner.stop(key, 1),
        lambda: runner.reap(key),
    )
    for attempt in attempts:
        with pytest.raises(UnmanagedContainer):
            attempt()
    assert docker_api.inspect_container(key)["State"]["Running"] is True


def test_stopped_agent_is_finished_with_the_signal_exit_code(
    engine: ContainerEngine, base_image: str, slug: str, tmp_path: Path
) -> None:
    runner = ContainerRunner(engine, profile(base_image))
    spec = launch(slug, tmp_path, ("sleep", "300"))
    runner.start(spec)
    runner.stop(spec.key, grace_seconds=5)
    assert runner.list_agents()[spec.key].exit_code == 143
    runner.stop(spec.key, grace_seconds=5)  # stopped already: still a success
    runner.reap(spec.key)
    runner.stop(spec.key)  # gone: a success too


def test_api_key_arrives_as_a_read_only_secret_never_in_the_container_env(
    instance: str, docker_api: APIClient, base_image: str, slug: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text("sk-test-123\n")
    config_dir = project_dir(tmp_path, "state/claude/agent")
    # The Claude config directories are allowed the way from_config allows them.
    allowed = (tmp_path / "state" / "claude",)
    engine = ContainerEngine(ContainersConfig(instance=instance, allowed_paths=allowed))
    runner = ContainerRunner(engine, profile(base_image), secrets={"anthropic_api_key": key_file})
    script = (
        'test "$ANTHROPIC_API_KEY" = sk-test-123 && echo key-ok; '
        'echo "$ANTHROPIC_BASE_URL"; touch "$CLAUDE_CONFIG_DIR/written"; sleep 300'
    )
    env = {
        "ANTHROPIC_API_KEY": "sk-test-123",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:8765",
        "CLAUDE_CONFIG_DIR": str(config_dir),
    }
    spec = launch(slug, tmp_path, ("sh", "-c", script), env)
    runner.start(spec)
    raw = docker_api.inspect_container(spec.key)
    environment = raw["Config"]["Env"]
    assert not any("sk-test-123" in item for item in environment)
    assert "ANTHROPIC_BASE_URL=http://host.docker.internal:8765" in environment
    assert "host.docker.internal:host-gateway" in raw["HostConfig"]["ExtraHosts"]
    mounts = {m["Destination"]: m for m in raw["Mounts"]}
    assert mounts["/run/secrets/anthropic_api_key"]["RW"] is False
    assert mounts[str(config_dir)]["RW"] is True and mounts[str(spec.cwd)]["RW"] is True
    wait_until((config_dir / "written").exists)
    logs = engine.logs(spec.key).stdout.decode()
    assert logs.splitlines() == ["key-ok", "http://host.docker.internal:8765"]


def test_the_projects_dev_image_is_the_default_image(
    engine: ContainerEngine, docker_api: APIClient, base_image: str, slug: str, tmp_path: Path
) -> None:
    spec = launch(slug, tmp_path, ("true",))
    (spec.cwd / ".devcontainer.json").write_text(json.dumps({"image": base_image}))
    runner = ContainerRunner(engine, profile(None))
    runner.start(spec)
    assert docker_api.inspect_container(spec.key)["Config"]["Image"] == base_image
    bare = launch(f"{slug}-b", tmp_path / "b", ("true",))
    with pytest.raises(RunnerError, match="no dev image"):
        runner.start(bare)


def test_a_container_left_created_by_a_dead_daemon_is_started_when_listed(
    engine: ContainerEngine, base_image: str, slug: str, tmp_path: Path
) -> None:
    log_path = tmp_path / "logs" / "run-9.log"
    orphan = ContainerSpec(
        slug, "run-9", base_image, ("sh", "-c", "echo late"), labels={"sidekick.log": str(log_path)}
    )
    engine.create(orphan)  # the daemon died before it could start it
    later = ContainerRunner(
        engine, profile(base_image), clock=lambda: datetime.now(UTC) + timedelta(hours=1)
    )
    assert container_name(slug) in later.list_agents()
    wait_until(lambda: finished(later, container_name(slug)))
    assert log_path.read_text() == "late\n"
    assert exit_status_path(log_path).read_text() == "0\n"


def test_a_log_path_label_outside_the_log_root_is_never_written(
    engine: ContainerEngine, base_image: str, slug: str, tmp_path: Path
) -> None:
    outside = tmp_path / "logs" / ".." / "elsewhere" / "run.log"
    spec = ContainerSpec(
        slug, "run-1", base_image, ("true",), labels={"sidekick.log": str(outside)}
    )
    engine.run(spec)
    runner = ContainerRunner(engine, profile(base_image), log_root=tmp_path / "logs")
    wait_until(lambda: finished(runner, container_name(slug)))
    assert runner.list_agents()[container_name(slug)].exit_code == 0
    assert not (tmp_path / "elsewhere").exists()


def test_a_dying_agent_container_rings_the_exit_listener_at_once(
    engine: ContainerEngine, base_image: str, slug: str, tmp_path: Path
) -> None:
    rings: list[float] = []
    exits = ContainerExits(engine, lambda: rings.append(time.monotonic()))
    exits.start()
    try:
        runner = ContainerRunner(engine, profile(base_image))
        spec = launch(slug, tmp_path, ("sh", "-c", "while [ ! -e go ]; do sleep 0.05; done"))
        runner.start(spec)
        time.sleep(0.5)
        assert rings == [], "starting is not an exit"
        (spec.cwd / "go").touch()
        wait_until(lambda: rings, timeout=10)
        assert finished(runner, spec.key)
    finally:
        exits.stop()

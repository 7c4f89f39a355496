"""The swarm runner against a single-node swarm: the runner contract, secrets, placement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from docker.api.client import APIClient

from sidekick.config import AgentProfile
from sidekick.containers.settings import ContainersConfig
from sidekick.containers.swarm import SwarmEngine
from sidekick.errors import AgentAlreadyRunning, RunnerError, RunnerUnavailable
from sidekick.runners.base import LaunchSpec, LiveAgent
from sidekick.runners.swarm import SwarmRunner
from tests.runners.helpers import WAIT_FOR_RELEASE, make_spec, release, wait_for, write_script
from tests.runners.test_runner_contract import (
    test_a_finished_agent_still_holds_its_key_until_reaped,
    test_a_second_start_for_a_key_is_refused_and_the_first_keeps_running,
    test_a_started_agent_is_listed_by_key_and_not_finished,
    test_agents_of_different_keys_run_side_by_side,
    test_an_ended_agent_stays_listed_with_its_exit_code,
    test_nothing_is_listed_before_anything_starts,
    test_reap_forgets_a_finished_agent,
    test_stop_and_reap_of_an_unknown_key_succeed,
    test_stop_removes_a_finished_agent_too,
    test_stop_removes_a_live_agent,
)

CONTRACT = (
    test_nothing_is_listed_before_anything_starts,
    test_a_started_agent_is_listed_by_key_and_not_finished,
    test_an_ended_agent_stays_listed_with_its_exit_code,
    test_a_second_start_for_a_key_is_refused_and_the_first_keeps_running,
    test_a_finished_agent_still_holds_its_key_until_reaped,
    test_agents_of_different_keys_run_side_by_side,
    test_reap_forgets_a_finished_agent,
    test_stop_removes_a_live_agent,
    test_stop_removes_a_finished_agent_too,
    test_stop_and_reap_of_an_unknown_key_succeed,
)
API_KEY = "sk-ant-swarm-secret-0123456789"


class SwarmHarness:
    """The contract's harness: agents wait for a release file in the shared directory."""

    def __init__(self, runner: SwarmRunner, root: Path) -> None:
        self.runner = runner
        self.root = root
        self.agent = write_script(root, "agent.sh", WAIT_FOR_RELEASE)

    def spec(self, key: str, run_id: str = "") -> LaunchSpec:
        env = {"RELEASE": str(self.root / f"{key}.release")}
        return make_spec(self.root, key, (str(self.agent),), run_id=run_id, env=env)

    def finish(self, key: str, exit_code: int) -> LiveAgent:
        release(self.root / f"{key}.release", exit_code)
        return wait_for(lambda: _finished(self.runner, key), timeout=30, what=f"{key} to end")


def _finished(runner: SwarmRunner, key: str) -> LiveAgent | None:
    agent = runner.list_agents().get(key)
    return agent if agent is not None and agent.finished else None


def swarm_runner(
    engine: SwarmEngine, image: str, root: Path, shared: Path | None = None, **profile: Any
) -> SwarmRunner:
    shared_paths = (shared or root,)
    settings = AgentProfile(runner="swarm", image=image, shared_paths=shared_paths, **profile)
    key_file = root / "api-key"
    key_file.write_text(API_KEY)
    return SwarmRunner(engine, settings, secrets={"anthropic_api_key": key_file})


@pytest.fixture
def harness(swarm_engine: SwarmEngine, base_image: str, tmp_path: Path) -> SwarmHarness:
    return SwarmHarness(swarm_runner(swarm_engine, base_image, tmp_path), tmp_path)


# The shared contract, proved against this runner too (each test takes `harness`).
for _test in CONTRACT:
    globals()[_test.__name__] = _test


def test_the_key_and_settings_are_secret_files_never_in_the_job_environment(
    swarm_engine: SwarmEngine, base_image: str, docker_api: APIClient, tmp_path: Path
) -> None:
    config_dir = tmp_path / "claude"
    config_dir.mkdir()
    (config_dir / "settings.json").write_text('{"model": "x"}')
    (config_dir / ".claude.json").write_text('{"hasCompletedOnboarding": true}')
    runner = swarm_runner(swarm_engine, base_image, tmp_path)
    probe = write_script(
        tmp_path,
        "probe.sh",
        'ls /run/secrets > "$OUT.secrets"\n'
        'cat "$CLAUDE_CONFIG_DIR/settings.json" > "$OUT.settings"\n'
        'key="$(cat /run/secrets/anthropic_api_key)"\n'
        '[ "$ANTHROPIC_API_KEY" = "$key" ] && echo same > "$OUT.key"\n' + WAIT_FOR_RELEASE,
    )
    env = {
        "RELEASE": str(tmp_path / "release"),
        "OUT": str(tmp_path / "out"),
        "CLAUDE_CONFIG_DIR": str(config_dir),
        "ANTHROPIC_API_KEY": API_KEY,
    }
    runner.start(make_spec(tmp_path, "sidekick-secrets", (str(probe),), env=env))
    wait_for((tmp_path / "out.key").exists, timeout=30, what="the probe")
    (service,) = docker_api.services(filters={"name": "sidekick-secrets"})
    (task,) = docker_api.tasks(filters={"service": service["ID"]})
    container = task["Spec"]["ContainerSpec"]
    assert not [v for v in container["Env"] if API_KEY in v or "ANTHROPIC_API_KEY" in v]
    assert {s["File"]["Name"] for s in container["Secrets"]} == {
        "anthropic_api_key",
        "claude_settings",
        "claude_state",
    }
    assert API_KEY not in json.dumps(docker_api.inspect_service(service["ID"]))
    running = docker_api.inspect_container(task["Status"]["ContainerStatus"]["ContainerID"])
    assert not [v for v in running["Config"]["Env"] if API_KEY in v]
    assert (tmp_path / "out.settings").read_text() == '{"model": "x"}'
    assert (tmp_path / "out.secrets").read_text().split() == [
        "anthropic_api_key",
        "claude_settings",
        "claude_state",
    ]
    release(tmp_path / "release", 0)
    wait_for(lambda: _finished(runner, "sidekick-secrets"), timeout=30, what="the probe to end")
    runner.reap("sidekick-secrets")
    assert swarm_engine.secrets() == []


def test_a_gpu_row_no_node_can_take_is_refused_saying_why(
    swarm_engine: SwarmEngine, base_image: str, docker_api: APIClient, tmp_path: Path
) -> None:
    runner = swarm_runner(swarm_engine, base_image, tmp_path)
    spec = make_spec(tmp_path, "sidekick-gpu", ("true",))
    with pytest.raises(RunnerUnavailable) as refused:
        runner.start(LaunchSpec(**{**vars(spec), "gpu": True}))
    assert "no swarm node can take it (needs node.labels.sidekick.gpu==true" in str(refused.value)
    assert docker_api.services(filters={"name": "sidekick-gpu"}) == []


def test_a_project_outside_the_shared_paths_is_refused_before_any_job(
    swarm_engine: SwarmEngine, base_image: str, tmp_path: Path
) -> None:
    runner = swarm_runner(swarm_engine, base_image, tmp_path, tmp_path / "elsewhere")
    spec = make_spec(tmp_path, "sidekick-local", ("true",))
    with pytest.raises(Exception, match="not under the profile's shared_paths"):
        runner.start(spec)
    assert swarm_engine.services() == []


def test_swarm_is_degraded_when_no_manager_answers(tmp_path: Path) -> None:
    socket = f"unix://{tmp_path}/no-engine.sock"
    engine = SwarmEngine(ContainersConfig(docker_host=socket, timeout=5))
    runner = SwarmRunner(engine, AgentProfile(runner="swarm", image="x"))
    (problem,) = runner.degraded()
    assert problem.startswith(f"docker swarm: no manager answers at {socket}")


PROMPT_PIECE = "$(rm -rf /) `id` ; 'quoted' \"double\" -- --help Бэкенд 日本語 \\n\n"


@pytest.mark.parametrize("size", [0, 1, 140_000, 511_999])
def test_a_prompt_reaches_the_job_on_stdin_as_data(
    swarm_engine: SwarmEngine, base_image: str, tmp_path: Path, size: int
) -> None:
    runner = swarm_runner(swarm_engine, base_image, tmp_path)
    prompt = (PROMPT_PIECE * (size // len(PROMPT_PIECE.encode()) + 1)).encode()[:size]
    stdin = tmp_path / "prompt.stdin"
    stdin.write_bytes(prompt)
    out = tmp_path / "received"
    spec = make_spec(
        tmp_path, "sidekick-prompt", ("sh", "-c", 'cat > "$OUT"'), env={"OUT": str(out)}
    )
    runner.start(LaunchSpec(**{**vars(spec), "stdin_path": stdin}))
    wait_for(lambda: _finished(runner, "sidekick-prompt"), timeout=30, what="the job")
    assert out.read_bytes() == prompt


def test_a_prompt_over_the_secret_limit_is_refused_before_any_job(
    swarm_engine: SwarmEngine, base_image: str, tmp_path: Path
) -> None:
    runner = swarm_runner(swarm_engine, base_image, tmp_path)
    stdin = tmp_path / "prompt.stdin"
    stdin.write_bytes(b"x" * 512_000)
    spec = make_spec(tmp_path, "sidekick-huge", ("true",))
    with pytest.raises(RunnerError, match="sidekick_stdin is 512000 bytes and a Swarm secret"):
        runner.start(LaunchSpec(**{**vars(spec), "stdin_path": stdin}))
    assert swarm_engine.services() == [] and swarm_engine.secrets() == []


@pytest.mark.parametrize("slug", ["a" * 64, "bekend_0123abcd", "Backend"])
def test_a_key_of_any_allowed_length_or_form_runs_as_one_job_listed_by_its_key(
    swarm_engine: SwarmEngine, base_image: str, tmp_path: Path, slug: str
) -> None:
    runner = swarm_runner(swarm_engine, base_image, tmp_path)
    key = f"sidekick-{slug}"
    runner.start(make_spec(tmp_path, key, ("true",)))
    assert wait_for(lambda: _finished(runner, key), timeout=30, what="the job").exit_code == 0
    with pytest.raises(AgentAlreadyRunning):
        runner.start(make_spec(tmp_path, key, ("true",), run_id="again"))
    (service,) = swarm_engine.services()
    assert len(service.name) <= 63
    runner.reap(key)
    assert runner.list_agents() == {}


def test_stop_sends_the_agent_sigterm_and_leaves_no_container_running(
    swarm_engine: SwarmEngine, base_image: str, docker_api: APIClient, tmp_path: Path
) -> None:
    runner = swarm_runner(swarm_engine, base_image, tmp_path)
    agent = write_script(
        tmp_path,
        "patient.sh",
        'trap \'echo got-term > "$OUT"; exit 0\' TERM\necho up > "$OUT.up"\n'
        "while :; do sleep 0.1; done\n",
    )
    out = tmp_path / "term"
    runner.start(make_spec(tmp_path, "sidekick-patient", (str(agent),), env={"OUT": str(out)}))
    wait_for(tmp_path.joinpath("term.up").exists, timeout=30, what="the agent")
    runner.stop("sidekick-patient", grace_seconds=5)
    assert runner.list_agents() == {}
    assert wait_for(out.exists, timeout=15, what="SIGTERM to reach the agent")
    assert out.read_text() == "got-term\n"
    # Before Moby 24 a removed job's task ran on, orphaned (moby/moby#44312).
    job = {"label": ["com.docker.swarm.service.name=sidekick-patient"]}
    assert docker_api.containers(filters=job) == []

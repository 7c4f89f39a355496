"""sidekick insight against the real engine: processes, services, health, load, problems."""

from __future__ import annotations

import io
import json
import subprocess
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from docker.api.client import APIClient

from sidekick.cli import main
from sidekick.containers import observe
from sidekick.containers.engine import ContainerEngine
from sidekick.containers.settings import ContainersConfig
from sidekick.insight.problems import ProblemKind, Thresholds
from sidekick.insight.processes import ServiceKind
from sidekick.insight.releases import last_release
from sidekick.insight.render import HOME_AND_CLEAR, RED, watch
from sidekick.insight.report import ContainerInsight, InsightCollector, Release

T = TypeVar("T")

pytestmark = pytest.mark.docker


def one(engine: ContainerEngine, name: str, **options: Any) -> ContainerInsight:
    [report] = InsightCollector(engine, **options).collect([name])
    return report


def kinds(report: ContainerInsight) -> set[ProblemKind]:
    return {p.kind for p in report.problems}


def evidence(report: ContainerInsight, kind: ProblemKind) -> str:
    return "\n".join(next(p for p in report.problems if p.kind is kind).evidence)


def test_a_web_server_is_recognised_with_its_published_and_listening_port(
    engine: ContainerEngine, web: str
) -> None:
    report = one(engine, web)
    assert [p.command for p in report.processes] == ["python3 -m http.server 8000"]
    assert any(s.kind is ServiceKind.WEB_SERVER for s in report.services)
    assert report.ports is not None
    assert report.ports.listening == (8000,)
    assert any(
        p.startswith("127.0.0.1:") and p.endswith("->8000/tcp") for p in report.ports.published
    )
    assert report.problems == ()
    assert report.load is not None and report.load.pids == 1 and report.load.memory_used > 0


def test_listening_ports_leave_out_the_embedded_dns_on_a_user_defined_network(
    api: APIClient, engine: ContainerEngine, web_on_network: str
) -> None:
    pid = api.inspect_container(web_on_network)["State"]["Pid"]
    table = Path(f"/proc/{pid}/net/tcp").read_text()
    # The premise: the engine's resolver listens inside the container's namespace.
    assert " 0B00007F:" in table, "no embedded DNS listener on 127.0.0.11 to leave out"
    report = one(engine, web_on_network)
    assert report.ports is not None
    assert report.ports.listening == (8000,)
    assert [s.name for s in report.services] == ["Python http.server"]


def test_an_oom_killed_process_is_named_with_the_flag_the_event_and_the_limit(
    engine: ContainerEngine, oom_killed: str
) -> None:
    report = one(engine, oom_killed)
    assert ProblemKind.OOM_KILLED in kinds(report)
    proof = evidence(report, ProblemKind.OOM_KILLED)
    assert "State.OOMKilled is true, exit code 137" in proof
    assert "oom event at" in proof
    assert report.health is not None and report.health.exit_code == 137


def test_a_restart_loop_shows_its_deaths_exit_codes_and_last_log_lines(
    engine: ContainerEngine, restart_loop: str
) -> None:
    report = one(engine, restart_loop)
    assert ProblemKind.RESTART_LOOP in kinds(report)
    proof = evidence(report, ProblemKind.RESTART_LOOP)
    assert "policy always" in proof
    assert proof.count("with exit code 3") >= 3
    assert "log: cannot open config.toml" in proof


def test_a_failing_health_check_shows_its_streak_and_probe_output(
    engine: ContainerEngine, unhealthy: str
) -> None:
    report = one(engine, unhealthy)
    assert ProblemKind.UNHEALTHY in kinds(report)
    proof = evidence(report, ProblemKind.UNHEALTHY)
    assert "failing streak" in proof
    assert "exit 1: GET /health: 503 database down" in proof
    assert report.health is not None
    assert any(
        e.action == "health_status" and e.detail == "unhealthy" for e in report.health.events
    )


def test_memory_near_its_limit_is_a_problem_with_used_and_limit(
    engine: ContainerEngine, near_limit: str
) -> None:
    report = one(engine, near_limit, thresholds=Thresholds(memory_percent=50))
    assert ProblemKind.MEMORY_NEAR_LIMIT in kinds(report)
    assert report.load is not None and report.load.memory_limit == 64 * 1024 * 1024
    assert "used of 64.0MiB" in evidence(report, ProblemKind.MEMORY_NEAR_LIMIT)


def test_a_container_that_exited_non_zero_shows_its_code_and_last_output(
    engine: ContainerEngine, exited_non_zero: str
) -> None:
    report = one(engine, exited_non_zero)
    assert kinds(report) == {ProblemKind.EXITED_NON_ZERO}
    proof = evidence(report, ProblemKind.EXITED_NON_ZERO)
    assert "exit code 4" in proof
    assert "log: migration 0042 failed: no such table" in proof


def test_processes_of_an_image_without_a_shell_come_from_top_without_exec(
    api: APIClient, engine: ContainerEngine, no_shell: str
) -> None:
    exec_id = api.exec_create(no_shell, ["sh", "-c", "true"])["Id"]
    api.exec_start(exec_id)
    # 126: the runtime found no sh to run; 127: a shell found no command.
    assert api.exec_inspect(exec_id)["ExitCode"] == 126, "the image has a shell after all"
    report = one(engine, no_shell)
    assert [p.command for p in report.processes] == ["/bin/sleep 600"]
    assert report.problems == ()


def test_an_image_older_than_the_projects_last_release_is_a_problem(
    engine: ContainerEngine, web: str, tmp_path: Path
) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    repo = tmp_path / "project"
    repo.mkdir()
    env = {"GIT_COMMITTER_DATE": later, "GIT_AUTHOR_DATE": later, "HOME": str(tmp_path)}
    for command in (
        ["git", "init", "-q"],
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "r",
        ],
        ["git", "tag", "v2.0.0"],
    ):
        subprocess.run(command, cwd=repo, env=env, check=True)
    release = last_release(repo)
    assert release is not None and release.name == "v2.0.0"
    report = one(engine, web, releases={web: release})
    assert kinds(report) == {ProblemKind.STALE_IMAGE}
    assert "release v2.0.0 made" in evidence(report, ProblemKind.STALE_IMAGE)


def test_a_release_before_the_image_is_no_problem(engine: ContainerEngine, web: str) -> None:
    old = Release("v0.1", datetime(2000, 1, 1, tzinfo=UTC))
    assert one(engine, web, releases={web: old}).problems == ()


class CountingEngine(ContainerEngine):
    """The real engine, counting how many stats calls are in flight at once."""

    def __init__(self) -> None:
        super().__init__(ContainersConfig(timeout=60))
        self.in_flight = 0
        self.most = 0
        self._count_lock = threading.Lock()

    def call(
        self, operation: str, project: str, fn: Callable[[APIClient], T], *, retry: bool = False
    ) -> T:
        if operation != "stats":
            return super().call(operation, project, fn, retry=retry)
        with self._count_lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            return super().call(operation, project, fn, retry=retry)
        finally:
            with self._count_lock:
                self.in_flight -= 1


def test_stats_of_twenty_containers_are_fetched_concurrently(many: list[str]) -> None:
    engine = CountingEngine()
    try:
        reports = InsightCollector(engine).collect(many)
    finally:
        engine.close()
    assert len(reports) == 20
    assert all(r.load is not None and r.load.pids == 1 for r in reports)
    assert engine.most > 1, "stats were fetched one after another"


def test_cpu_percent_is_measured_between_samples_under_watch(
    engine: ContainerEngine, web: str
) -> None:
    collector = InsightCollector(engine)
    [first] = collector.collect([web])
    [second] = collector.collect([web])
    assert first.load is not None and first.load.cpu_basis == "average since start"
    assert second.load is not None and second.load.cpu_basis.startswith("over the last")


def test_a_missing_container_is_reported_not_raised(engine: ContainerEngine) -> None:
    [report] = InsightCollector(engine).collect(["insight-no-such-container"])
    assert report.health is None
    assert "No such container" in report.notes[0]


def test_the_command_prints_one_json_document_naming_each_problem(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    web: str,
    oom_killed: str,
    restart_loop: str,
    unhealthy: str,
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("{}\n")
    code = main(
        ["insight", "--config", str(config), "--json", web, oom_killed, restart_loop, unhealthy]
    )
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    problems = {c["name"]: [p["kind"] for p in c["problems"]] for c in document["containers"]}
    assert problems[web] == []
    assert "OOM-killed" in problems[oom_killed]
    assert "restart loop" in problems[restart_loop]
    assert problems[unhealthy] == ["unhealthy"]


def test_the_table_lists_each_container_with_its_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], web: str, unhealthy: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("{}\n")
    assert main(["insight", "--config", str(config), web, unhealthy]) == 0
    out = capsys.readouterr().out
    header, *rows = out.split("\n\n")[0].splitlines()
    assert header.split()[:3] == ["NAME", "STATE", "HEALTH"]
    assert rows[1].startswith(unhealthy[:24]) and rows[1].rstrip().endswith("unhealthy")
    assert "PROBLEM unhealthy: its health check fails" in out


def test_an_unknown_target_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], engine: ContainerEngine
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("{}\n")
    assert main(["insight", "--config", str(config), "no-such-thing-at-all"]) == 1
    assert "'no-such-thing-at-all' is neither a container" in capsys.readouterr().err


def _watch_twice(collector: InsightCollector, name: str, *, as_json: bool) -> str:
    """Two rounds of --watch output; the second round's collect ends the loop."""
    out = io.StringIO()
    stop = threading.Event()
    rounds: list[int] = []

    def collect() -> list[ContainerInsight]:
        rounds.append(1)
        if len(rounds) == 2:
            stop.set()
        return collector.collect([name])

    clock = lambda: datetime.now(UTC)  # noqa: E731
    watch(collect, clock, out, interval=0.01, as_json=as_json, stop=stop, color=True)
    return out.getvalue()


def test_watch_redraws_the_table_in_place_with_problems_in_red(
    engine: ContainerEngine, unhealthy: str
) -> None:
    text = _watch_twice(InsightCollector(engine), unhealthy, as_json=False)
    assert text.count(HOME_AND_CLEAR) == 2
    assert f"{RED}{unhealthy[:24]}" in text


def test_watch_with_json_prints_one_document_per_line(engine: ContainerEngine, web: str) -> None:
    lines = _watch_twice(InsightCollector(engine), web, as_json=True).splitlines()
    assert len(lines) == 2
    assert all(json.loads(line)["containers"][0]["name"] == web for line in lines)


def test_observe_reads_events_of_exactly_the_named_containers(
    engine: ContainerEngine, web: str, exited_non_zero: str
) -> None:
    now = datetime.now(UTC)
    events = observe.recent_events(engine, [exited_non_zero], now - timedelta(hours=1), now)
    assert {e.container for e in events} == {exited_non_zero}
    assert any(e.action == "die" and e.exit_code == 4 for e in events)

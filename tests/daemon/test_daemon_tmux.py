"""The daemon against a real tmux server on its own socket, with shell scripts as agents."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sidekick.daemon import Daemon
from sidekick.models import ProjectStatus
from sidekick.state import StateStore
from tests.daemon.world import World, make_world
from tests.polling import wait_until

P = ProjectStatus
QUICK = ["sh", "-c", 'echo working on "$SIDEKICK_PROJECT"; echo "$SIDEKICK_NEXT_ACTION" > note.txt']


def world_with(worlds: list[World], tmp_path: Path, *args: object, **kw: object) -> World:
    world = make_world(tmp_path, *args, **kw)  # type: ignore[arg-type]
    worlds.append(world)
    return world


def tick_until(daemon: Daemon, condition: object, timeout: float = 15.0) -> None:
    def ticked() -> object:
        daemon.run_once()
        return condition()  # type: ignore[operator]

    wait_until(ticked, timeout=timeout, step=0.05)


def status_of(world: World, name: str) -> ProjectStatus:
    return world.rows()[name].status


def test_project_goes_pending_in_progress_complete_in_the_file(
    worlds: list[World], tmp_path: Path
) -> None:
    slow = ["sh", "-c", "echo working; while [ ! -e go ]; do sleep 0.05; done; echo done"]
    world = world_with(worlds, tmp_path, ["alpha"], slow, rows=["alpha,1,Pending,,,Ship it,,,"])
    daemon = Daemon(world.config())
    tick_until(daemon, lambda: status_of(world, "alpha") is P.IN_PROGRESS)
    row = world.rows()["alpha"]
    assert row.agent == "sidekick-alpha" and "started" in row.last_update
    assert world.sessions() == ["sidekick-alpha"]
    (tmp_path / "projects" / "alpha" / "go").touch()
    tick_until(daemon, lambda: status_of(world, "alpha") is P.COMPLETE)
    assert "complete" in world.rows()["alpha"].last_update
    tick_until(daemon, lambda: world.sessions() == [])
    (run,) = StateStore(world.state / "sidekick.db").runs("alpha")
    assert run.state == "finished" and run.exit_code == 0
    assert "working" in Path(run.log_path).read_text() and "done" in Path(run.log_path).read_text()


def test_failing_agent_is_failed_with_its_log_tail(worlds: list[World], tmp_path: Path) -> None:
    failing = ["sh", "-c", "echo step one; echo 'boom: disk full' >&2; exit 3"]
    world = world_with(worlds, tmp_path, ["beta"], failing, rows=["beta,1,Pending,,,,,,"])
    daemon = Daemon(world.config())
    tick_until(daemon, lambda: status_of(world, "beta") is P.FAILED)
    assert "exit 3: boom: disk full" in world.rows()["beta"].last_update
    store = StateStore(world.state / "sidekick.db")
    (run,) = store.runs("beta")
    assert run.exit_code == 3 and "boom" in run.reason
    failed = [e for e in store.events("beta") if e.kind == "failed"]
    assert failed and failed[0].data["log_tail"] == ["step one", "boom: disk full"]


def test_capacity_and_gpu_slots_are_respected(worlds: list[World], tmp_path: Path) -> None:
    wait = ["sh", "-c", "while [ ! -e ../release ]; do sleep 0.05; done"]
    rows = [
        "g1,1,Pending,,,,,yes,",
        "g2,2,Pending,,,,,yes,",
        "c1,3,Pending,,,,,no,",
        "c2,4,Pending,,,,,,",
    ]
    world = world_with(
        worlds,
        tmp_path,
        ["g1", "g2", "c1", "c2"],
        wait,
        rows=rows,
        capacity={"max_agents": 2, "gpu_slots": 1},
    )
    daemon = Daemon(world.config())
    tick_until(daemon, lambda: len(world.sessions()) == 2)
    daemon.run_once()
    assert world.sessions() == ["sidekick-c1", "sidekick-g1"]
    assert status_of(world, "g2") is P.PENDING and status_of(world, "c2") is P.PENDING
    (tmp_path / "projects" / "release").touch()
    tick_until(daemon, lambda: all(r.status is P.COMPLETE for r in world.rows().values()))


def test_person_blocking_a_running_project_stops_it(worlds: list[World], tmp_path: Path) -> None:
    forever = ["sh", "-c", "trap 'echo stopping; exit 143' TERM; while :; do sleep 0.05; done"]
    world = world_with(worlds, tmp_path, ["gamma"], forever, rows=["gamma,1,Pending,,,,,,"])
    daemon = Daemon(world.config())
    tick_until(daemon, lambda: world.sessions() == ["sidekick-gamma"])
    tick_until(daemon, lambda: status_of(world, "gamma") is P.IN_PROGRESS)
    world.save(["gamma,1,Blocked,sidekick-gamma,,waiting on a person,,,"])
    tick_until(daemon, lambda: world.sessions() == [])
    daemon.run_once()
    row = world.rows()["gamma"]
    assert row.status is P.BLOCKED and row.next_action == "waiting on a person"
    (run,) = StateStore(world.state / "sidekick.db").runs("gamma")
    assert run.state == "stopped" and run.reason == "row marked Blocked"


def test_max_runtime_stops_the_agent_and_fails_the_row(worlds: list[World], tmp_path: Path) -> None:
    forever = ["sh", "-c", "while :; do sleep 0.05; done"]
    world = world_with(
        worlds,
        tmp_path,
        ["slow"],
        forever,
        rows=["slow,1,Pending,,,,,,"],
        policy={"max_runtime": 0.5, "stop_grace": 1},
    )
    daemon = Daemon(world.config())
    tick_until(daemon, lambda: status_of(world, "slow") is P.FAILED)
    assert "max_runtime" in world.rows()["slow"].last_update
    assert world.sessions() == []


def test_missing_directory_blocks_the_row_with_the_reason(
    worlds: list[World], tmp_path: Path
) -> None:
    world = world_with(worlds, tmp_path, [], QUICK, rows=["ghost,1,Pending,,,,,,"])
    daemon = Daemon(world.config())
    tick_until(daemon, lambda: status_of(world, "ghost") is P.BLOCKED)
    assert "no directory configured" in world.rows()["ghost"].last_update
    assert world.sessions() == []


def test_an_agent_outlives_its_killed_tmux_server_alone_and_its_end_is_recorded(
    worlds: list[World], tmp_path: Path
) -> None:
    wait = ["sh", "-c", "touch started; while [ ! -e go ]; do sleep 0.05; done"]
    world = world_with(worlds, tmp_path, ["delta"], wait, rows=["delta,1,Pending,,,,,,"])
    daemon = Daemon(world.config())
    tick_until(daemon, (tmp_path / "projects" / "delta" / "started").exists)
    world.kill_tmux_server()
    store = StateStore(world.state / "sidekick.db")
    for _ in range(3):
        daemon.run_once()
    assert [r.state for r in store.runs("delta")] == ["running"]
    assert world.sessions() == []
    (tmp_path / "projects" / "delta" / "go").touch()
    tick_until(daemon, lambda: status_of(world, "delta") is P.COMPLETE)
    assert [r.state for r in store.runs("delta")] == ["finished"]


def test_a_save_triggers_a_launch_without_waiting_for_the_interval(
    worlds: list[World], tmp_path: Path
) -> None:
    world = world_with(worlds, tmp_path, ["eps"], QUICK, rows=["eps,1,Complete,,,,,,"])
    daemon = Daemon(world.config())
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        wait_until((world.state / "heartbeat.json").exists)
        world.save(["eps,1,Pending,,,write a note,,,"])
        wait_until(lambda: status_of(world, "eps") is P.COMPLETE, timeout=10)
        note = tmp_path / "projects" / "eps" / "note.txt"
        assert note.read_text().strip() == "write a note"
    finally:
        daemon.request_stop()
        thread.join(10)
    assert not thread.is_alive()


def test_an_agents_end_triggers_a_reconcile_without_waiting_for_a_poll(
    worlds: list[World], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the exit bell is left to notice the end: no poll and no interval within the wait.
    monkeypatch.setattr("sidekick.daemon.AGENT_POLL_SECONDS", 3600.0)
    wait = ["sh", "-c", "while [ ! -e go ]; do sleep 0.02; done"]
    world = world_with(worlds, tmp_path, ["iota"], wait, rows=["iota,1,Pending,,,,,,"])
    daemon = Daemon(world.config())
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        wait_until(lambda: status_of(world, "iota") is P.IN_PROGRESS)
        (tmp_path / "projects" / "iota" / "go").touch()
        wait_until(lambda: status_of(world, "iota") is P.COMPLETE, timeout=5)
        wait_until(lambda: world.sessions() == [], timeout=5)
    finally:
        daemon.request_stop()
        thread.join(10)
    assert not thread.is_alive()
    assert not (world.state / "agent-exit.sock").exists(), "a stopped daemon removes its bell"


def sidekick(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidekick", *args, "--config", str(world.config_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_stopping_the_daemon_leaves_agents_running_for_the_next_to_adopt(
    worlds: list[World], tmp_path: Path
) -> None:
    wait = ["sh", "-c", "while [ ! -e go ]; do sleep 0.05; done"]
    world = world_with(worlds, tmp_path, ["zeta"], wait, rows=["zeta,1,Pending,,,,,,"])
    daemon = subprocess.Popen(
        [sys.executable, "-m", "sidekick", "run", "--config", str(world.config_path)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: status_of(world, "zeta") is P.IN_PROGRESS)
        assert sidekick(world, "check").returncode == 0
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert world.sessions() == ["sidekick-zeta"], "a graceful stop leaves agents running"
    check = sidekick(world, "check")
    assert check.returncode == 1 and "stopped" in check.stderr
    second = Daemon(world.config())
    second.run_once()
    store = StateStore(world.state / "sidekick.db")
    assert [r.state for r in store.runs("zeta")] == ["running"], "adopted, not restarted"
    (tmp_path / "projects" / "zeta" / "go").touch()
    tick_until(second, lambda: status_of(world, "zeta") is P.COMPLETE)
    assert len(store.runs("zeta")) == 1


def test_status_and_runs_commands_show_the_projects(worlds: list[World], tmp_path: Path) -> None:
    world = world_with(
        worlds, tmp_path, ["eta"], QUICK, rows=["eta,1,Pending,,,,,,", "theta,2,Pending,,,,,,"]
    )
    daemon = Daemon(world.config())
    tick_until(daemon, lambda: status_of(world, "eta") is P.COMPLETE)
    daemon.run_once()
    table = sidekick(world, "status")
    assert table.returncode == 0
    assert "eta" in table.stdout and "Complete" in table.stdout
    assert "no directory configured" in table.stdout
    as_json = sidekick(world, "status", "--json")
    data = json.loads(as_json.stdout)
    assert {p["project"]: p["status"] for p in data["projects"]} == {
        "eta": "Complete",
        "theta": "Blocked",
    }
    runs = sidekick(world, "runs", "eta", "--json")
    assert json.loads(runs.stdout)[0]["exit_code"] == 0


def test_stop_agent_stops_one_on_purpose_and_it_stays_stopped(
    worlds: list[World], tmp_path: Path
) -> None:
    forever = ["sh", "-c", "while :; do sleep 0.05; done"]
    world = world_with(worlds, tmp_path, ["iota"], forever, rows=["iota,1,Pending,,,,,,"])
    daemon = Daemon(world.config())
    tick_until(daemon, lambda: status_of(world, "iota") is P.IN_PROGRESS)
    assert sidekick(world, "stop-agent", "iota").returncode == 0
    tick_until(daemon, lambda: status_of(world, "iota") is P.BLOCKED)
    daemon.run_once()
    assert world.sessions() == []


def test_validate_reports_bad_rows_with_file_line_and_field(
    worlds: list[World], tmp_path: Path
) -> None:
    world = world_with(
        worlds, tmp_path, [], QUICK, rows=["ok,1,Pending,,,,,,", "bad,soon,Pending,,,,,,"]
    )
    result = sidekick(world, "validate")
    assert result.returncode == 1
    assert f"{world.csv}:3 [Priority]: not a whole number: 'soon'" in result.stdout
    assert os.path.basename(world.csv) in result.stdout


RESULT_LINE = (
    '{"type":"result","subtype":"success","is_error":false,"session_id":"s-1","num_turns":2,'
    '"total_cost_usd":0.75,"usage":{"input_tokens":10,"output_tokens":5},"result":"ok"}'
)


def test_spent_budget_holds_new_runs_and_says_why(worlds: list[World], tmp_path: Path) -> None:
    costly = ["sh", "-c", f"echo '{RESULT_LINE}'"]
    world = world_with(
        worlds,
        tmp_path,
        ["kappa"],
        costly,
        rows=["kappa,1,Pending,,,,,,"],
        budget={"per_project_usd": 0.5},
    )
    daemon = Daemon(world.config())
    tick_until(daemon, lambda: status_of(world, "kappa") is P.COMPLETE)
    (run,) = StateStore(world.state / "sidekick.db").runs("kappa")
    assert (run.cost_usd, run.session_id, run.turns) == (0.75, "s-1", 2)
    world.save(["kappa,1,Pending,,,again please,,,"])
    daemon.run_once()
    daemon.run_once()
    assert world.sessions() == [] and status_of(world, "kappa") is P.PENDING
    data = json.loads(sidekick(world, "status", "--json").stdout)
    (row,) = data["projects"]
    assert row["note"] == "project budget spent ($0.75 of $0.50)"
    assert data["total_cost_usd"] == 0.75


def test_an_editors_lock_holds_the_write_back_and_status_says_so(
    worlds: list[World], tmp_path: Path
) -> None:
    world = world_with(
        worlds,
        tmp_path,
        ["lambda"],
        QUICK,
        rows=["lambda,1,Pending,,,,,,"],
        priority_source={"csv": {"lock_wait": 0.1}},
    )
    daemon = Daemon(world.config())
    tick_until(daemon, lambda: status_of(world, "lambda") is P.IN_PROGRESS)
    lock = tmp_path / ".~lock.priorities.csv#"
    lock.write_text(",person,laptop,23.11.2026 16:00,file:///home/person/.config/libreoffice/4;")
    store = StateStore(world.state / "sidekick.db")
    tick_until(daemon, lambda: [r.state for r in store.runs("lambda")] == ["finished"])
    daemon.run_once()
    assert status_of(world, "lambda") is P.IN_PROGRESS, "the file is not written while locked"
    data = json.loads(sidekick(world, "status", "--json").stdout)
    (waiting,) = data["waiting"]
    assert waiting.startswith("1 update(s) not yet written") and ".~lock.priorities.csv#" in waiting
    assert "waiting: 1 update(s)" in sidekick(world, "status").stdout
    lock.unlink()
    tick_until(daemon, lambda: status_of(world, "lambda") is P.COMPLETE)
    assert json.loads(sidekick(world, "status", "--json").stdout)["waiting"] == []

"""Rows and their agents against a real tmux server and a real priorities.csv.

A row still in the list keeps its agent however badly a save left it; an agent
started under a project's older key is adopted after an upgrade; one reconcile
(``sidekick run --once``) writes what it did.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sidekick.daemon import Daemon
from sidekick.models import AgentRun, agent_key
from sidekick.priorities.csv_file import CsvPrioritySource
from sidekick.runners.base import LaunchSpec
from sidekick.state import StateStore
from tests.daemon.world import HEADER, World, make_world
from tests.polling import wait_until

# Runs until a file named "go" appears in its project directory.
UNTIL_GO = ["sh", "-c", "while [ ! -e go ]; do sleep 0.05; done; echo done"]


Make = Callable[[list[str], list[str]], World]


@pytest.fixture
def make(tmp_path: Path, worlds: list[World]) -> Make:
    """A world of these projects and rows; its agents end with the test."""

    def world_of(names: list[str], rows: list[str]) -> World:
        worlds.append(make_world(tmp_path, names, UNTIL_GO, rows=rows, capacity={"max_agents": 9}))
        return worlds[-1]

    return world_of


def raw_rows(world: World) -> dict[str, list[dict[str, str]]]:
    """Every row of the file as a person sees it, valid or not, by name."""
    out: dict[str, list[dict[str, str]]] = {}
    for row in csv.DictReader(io.StringIO(world.csv.read_text(encoding="utf-8"))):
        out.setdefault(row["Project"], []).append(row)
    return out


def save_text(world: World, text: str) -> None:
    tmp = world.root / ".priorities.csv.swp~"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(world.csv)


def tick_until(daemon: Daemon, condition: Callable[[], bool]) -> None:
    def reconciled() -> bool:
        daemon.run_once()
        return condition()

    wait_until(reconciled, timeout=15.0)


def sidekick(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "sidekick", *args, "--config", str(world.config_path)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def go(world: World, name: str) -> None:
    (world.root / "projects" / name / "go").touch()


def test_a_save_that_breaks_a_date_and_copies_a_row_stops_no_agent(make: Make) -> None:
    world = make(
        ["alpha", "beta"],
        ["alpha,1,Pending,,,,2026-12-15,,", "beta,2,Pending,,,,,,"],
    )
    daemon = Daemon(world.config())
    daemon.run_once()
    assert world.sessions() == ["sidekick-alpha", "sidekick-beta"]
    text = world.csv.read_text(encoding="utf-8")
    beta_line = next(line for line in text.splitlines() if line.startswith("beta,"))
    save_text(world, text.replace("2026-12-15", "15/12/2026") + beta_line + "\n")
    for _ in range(3):
        daemon.run_once()
    assert world.sessions() == ["sidekick-alpha", "sidekick-beta"]
    rows = raw_rows(world)
    assert rows["alpha"][0]["Status"] == "In Progress"
    assert [r["Status"] for r in rows["beta"]] == ["In Progress", "In Progress"]
    findings = [str(f) for f in CsvPrioritySource(world.csv).load().findings]
    assert any("[Deadline]" in f and "15/12/2026" in f for f in findings)
    assert sum("duplicate project name 'beta'" in f for f in findings) == 2
    shown = sidekick(world, "status").stdout
    assert "agent sidekick-alpha runs on for alpha, whose row is not served" in shown
    assert "agent sidekick-beta runs on for beta, whose row is not served" in shown
    assert "[Deadline]: not an ISO date (YYYY-MM-DD): '15/12/2026'" in shown

    # beta ends while its row is ambiguous: the outcome waits for the row, not lost.
    go(world, "beta")
    tick_until(daemon, lambda: world.sessions() == ["sidekick-alpha"])
    assert [r["Status"] for r in raw_rows(world)["beta"]] == ["In Progress", "In Progress"]
    (beta_run,) = StateStore(world.state / "sidekick.db").runs("beta")
    assert beta_run.state == "finished"

    # The person fixes the save: beta's outcome lands, alpha's agent never stopped.
    fixed = world.csv.read_text(encoding="utf-8").replace("15/12/2026", "2026-12-15")
    lines = fixed.splitlines(keepends=True)
    save_text(world, "".join(lines[:-1]))
    daemon.run_once()
    assert raw_rows(world)["beta"][0]["Status"] == "Complete"
    assert world.sessions() == ["sidekick-alpha"]
    assert raw_rows(world)["alpha"][0]["Status"] == "In Progress"


def test_only_a_row_that_is_gone_blocked_or_complete_stops_its_agent(make: Make) -> None:
    names = ["gone", "blocked", "done", "bad", "wide"]
    rows = [f"{n},{i},Pending,,,,,," for i, n in enumerate(names)]
    world = make(names, rows)
    daemon = Daemon(world.config())
    daemon.run_once()
    assert world.sessions() == sorted(agent_key(n) for n in names)
    edits = {
        "blocked": ("In Progress", "Blocked"),
        "done": ("In Progress", "Complete"),
        "bad": ("bad,3,", "bad,three,"),
        # An unquoted comma typed into the last cell: more fields than the header.
        "wide": ("UTC · started,,,,", "UTC · started,,,,fix a, then b"),
    }
    edited = [HEADER.strip()]
    for row in world.csv.read_text(encoding="utf-8").splitlines()[1:]:
        name = row.split(",", 1)[0]
        if name in edits:
            edited.append(row.replace(*edits[name]))
    save_text(world, "\n".join(edited) + "\n")
    tick_until(daemon, lambda: world.sessions() == [agent_key("bad"), agent_key("wide")])
    daemon.run_once()
    rows_now = raw_rows(world)
    assert {n: rows_now[n][0]["Status"] for n in ("blocked", "done", "bad", "wide")} == {
        "blocked": "Blocked",
        "done": "Complete",
        "bad": "In Progress",
        "wide": "In Progress",
    }
    assert "gone" not in rows_now
    # The person's status stays; the note no longer says the stopped agent 'started'.
    assert rows_now["blocked"][0]["Last Update"].endswith("· stopped: row marked Blocked")
    assert rows_now["done"][0]["Last Update"].endswith("· stopped: row marked Complete")
    findings = {f.project: f.problem for f in CsvPrioritySource(world.csv).load().findings}
    assert "not a whole number: 'three'" in findings["bad"]
    assert "10 fields but the header has 9" in findings["wide"]


def upgraded(world: World, *olds: tuple[str, str, bool]) -> Daemon:
    """A daemon of this version over agents (name, older key, run recorded) started by an
    older one, after a few reconciles."""
    daemon = Daemon(world.config())
    for name, key, record in olds:
        start_as_an_older_version_did(daemon, world, name, key, record=record)
    for _ in range(3):
        daemon.run_once()
    return daemon


def start_as_an_older_version_did(
    daemon: Daemon, world: World, name: str, key: str, *, record: bool
) -> None:
    """An agent running under the key this version no longer gives the project."""
    run_id = f"old{len(key)}"
    directory = world.root / "projects" / name
    log = world.state / "logs" / key.removeprefix("sidekick-") / f"{run_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    spec = LaunchSpec(key, name, run_id, tuple(UNTIL_GO), directory, log)
    if record:
        started = datetime.now(UTC)
        run = AgentRun(run_id, name, key, spec.argv, started, "running", log_path=str(log))
        daemon.parts.store.begin_run(run)
    daemon.parts.runner.start(spec)


def test_an_agent_started_under_todays_key_is_adopted_after_the_upgrade(make: Make) -> None:
    rows = ["Foo Bar,1,In Progress,sidekick-foo-bar,,,,,", "C++ SDK,2,Pending,,,,,,"]
    world = make(["Foo Bar", "C++ SDK"], rows)
    daemon = upgraded(
        world, ("Foo Bar", "sidekick-foo-bar", True), ("C++ SDK", "sidekick-c-sdk", False)
    )
    assert world.sessions() == ["sidekick-c-sdk", "sidekick-foo-bar"]
    rows_now = raw_rows(world)
    assert rows_now["Foo Bar"][0]["Status"] == "In Progress"
    assert rows_now["C++ SDK"][0]["Status"] == "In Progress"
    assert rows_now["C++ SDK"][0]["Agent"] == "sidekick-c-sdk"
    go(world, "Foo Bar")
    go(world, "C++ SDK")
    tick_until(daemon, lambda: world.sessions() == [])
    assert {n: r[0]["Status"] for n, r in raw_rows(world).items()} == {
        "Foo Bar": "Complete",
        "C++ SDK": "Complete",
    }


def test_an_old_agent_whose_key_several_rows_had_is_neither_stopped_nor_doubled(make: Make) -> None:
    rows = ["Бэкенд,1,Pending,,,,,,", "Фронтенд,2,Blocked,,,,,,"]
    world = make(["Бэкенд", "Фронтенд"], rows)
    # Its run record is lost: whether it is Бэкенд's or Фронтенд's cannot be told.
    daemon = upgraded(world, ("Бэкенд", "sidekick-project", False))
    assert world.sessions() == ["sidekick-project"]
    go(world, "Бэкенд")
    tick_until(daemon, lambda: world.sessions() == [agent_key("Бэкенд")])
    assert raw_rows(world)["Бэкенд"][0]["Status"] == "In Progress"
    assert raw_rows(world)["Фронтенд"][0]["Status"] == "Blocked"


def test_run_once_starts_the_agent_and_writes_its_row(make: Make) -> None:
    world = make(["alpha"], ["alpha,1,Pending,,,Ship it,,,"])
    done = sidekick(world, "run", "--once")
    assert done.returncode == 0, done.stderr
    assert world.sessions() == ["sidekick-alpha"]
    (row,) = raw_rows(world)["alpha"]
    assert (row["Status"], row["Agent"]) == ("In Progress", "sidekick-alpha")
    assert row["Last Update"].endswith("· started")


def test_stop_agent_stops_an_agent_under_its_projects_older_key(make: Make) -> None:
    world = make(["Foo Bar"], ["Foo Bar,1,In Progress,sidekick-foo-bar,,,,,"])
    daemon = upgraded(world, ("Foo Bar", "sidekick-foo-bar", True))
    done = sidekick(world, "stop-agent", "Foo Bar")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped sidekick-foo-bar"
    tick_until(daemon, lambda: raw_rows(world)["Foo Bar"][0]["Status"] == "Blocked")
    assert world.sessions() == []

"""Files the daemon wrote, read back by whatever version of sidekick runs now."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from sidekick.cli import main
from sidekick.errors import StateFileError
from sidekick.health import HEARTBEAT_FORMAT, Heartbeat, heartbeat_path, write_heartbeat
from sidekick.state import SCHEMA_VERSION, StateStore
from sidekick.status import STATUS_NAME


def state_dir_config(tmp_path: Path) -> tuple[Path, str]:
    config = tmp_path / "config.yaml"
    config.write_text("daemon:\n  state_dir: state\n")
    (tmp_path / "state").mkdir()
    return tmp_path / "state", str(config)


def check(config: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check", "--config", config])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and len((out + err).strip().splitlines()) == 1
    return code, (out + err).strip()


def write_beat(state: Path, data: Any) -> None:
    heartbeat_path(state).write_text(json.dumps(data))


def test_heartbeat_round_trips_with_its_format_version(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat.json"
    write_heartbeat(path, Heartbeat(pid=7, loop_at=1.5))
    assert json.loads(path.read_text())["version"] == HEARTBEAT_FORMAT


@pytest.mark.parametrize(
    "extra",
    [
        {"threads_restarted": 3},
        {"version": HEARTBEAT_FORMAT, "build": {"sha": "abc"}},
        {"loop_at_ns": 1},
    ],
)
def test_check_ignores_keys_a_newer_minor_version_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: dict[str, Any]
) -> None:
    state, config = state_dir_config(tmp_path)
    write_beat(state, {"pid": 42, "loop_at": time.time(), **extra})
    assert check(config, capsys) == (0, "healthy (pid 42)")


def test_check_defaults_keys_an_older_version_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, config = state_dir_config(tmp_path)
    write_beat(state, {"pid": 42, "loop_at": time.time()})
    assert check(config, capsys) == (0, "healthy (pid 42)")


def test_check_ignores_an_optional_key_of_an_unexpected_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, config = state_dir_config(tmp_path)
    write_beat(state, {"pid": 42, "loop_at": time.time(), "threads": "soon", "degraded": 3})
    assert check(config, capsys) == (0, "healthy (pid 42)")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ({"version": HEARTBEAT_FORMAT + 1, "pid": 1, "loop_at": 0}, "written by a newer sidekick"),
        ({"version": "two", "pid": 1, "loop_at": 0}, "unknown format version 'two'"),
        ({"pid": 1}, "lacks 'loop_at'"),
        ({"pid": "1", "loop_at": 0}, "lacks 'pid'"),
        ({"pid": True, "loop_at": 0}, "lacks 'pid'"),
        ([1, 2], "does not hold a JSON object"),
    ],
)
def test_check_gives_an_unhealthy_verdict_for_a_heartbeat_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: Any, why: str
) -> None:
    state, config = state_dir_config(tmp_path)
    write_beat(state, content)
    code, line = check(config, capsys)
    assert code == 1 and why in line and str(heartbeat_path(state)) in line


@pytest.mark.parametrize("raw", [b"", b"{not json", b"\xff\xfe\x00garbage"])
def test_check_gives_an_unhealthy_verdict_for_a_heartbeat_that_is_not_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: bytes
) -> None:
    state, config = state_dir_config(tmp_path)
    heartbeat_path(state).write_bytes(raw)
    code, line = check(config, capsys)
    assert code == 1 and "not valid JSON" in line


def test_check_gives_a_verdict_when_the_heartbeat_is_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, config = state_dir_config(tmp_path)
    heartbeat_path(state).mkdir()
    code, line = check(config, capsys)
    assert code == 1 and "cannot be read" in line


def status(config: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["status", "--json", "--config", config])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_reads_a_report_with_unknown_and_missing_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, config = state_dir_config(tmp_path)
    rows = [{"project": "Alpha", "priority": 1, "status": "Pending", "owner": "kim"}]
    report = {"updated_at": 5.0, "source": "list.csv", "projects": rows, "charts": {}}
    (state / STATUS_NAME).write_text(json.dumps(report))
    code, out, _ = status(config, capsys)
    data = json.loads(out)
    assert code == 0 and data["source"] == "list.csv" and data["waiting"] == []
    assert data["projects"][0]["project"] == "Alpha" and data["projects"][0]["agent"] == ""


def test_status_refuses_a_report_of_a_newer_major_format_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, config = state_dir_config(tmp_path)
    report = {"version": 99, "updated_at": 5.0, "source": "list.csv"}
    (state / STATUS_NAME).write_text(json.dumps(report))
    code, out, err = status(config, capsys)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "format 99" in err and "upgrade sidekick" in err


# --- the state database ---------------------------------------------------------------------

# The runs table as sidekick wrote it before the schema carried a version.
UNVERSIONED_RUNS = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, project TEXT NOT NULL, key TEXT NOT NULL, runner TEXT NOT NULL,
    command TEXT NOT NULL, state TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT,
    exit_code INTEGER, reason TEXT NOT NULL DEFAULT '', outcome TEXT NOT NULL DEFAULT '',
    log_path TEXT NOT NULL DEFAULT '', session_id TEXT NOT NULL DEFAULT '', turns INTEGER,
    input_tokens INTEGER, output_tokens INTEGER, cost_usd REAL
);
INSERT INTO runs (run_id, project, key, runner, command, state, started_at, cost_usd)
VALUES ('r1', 'Alpha', 'sidekick-alpha', 'tmux', '["claude"]', 'running',
        '2026-11-20T10:00:00.000+00:00', 0.25);
"""


def user_version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def test_a_new_state_database_carries_its_schema_version(tmp_path: Path) -> None:
    StateStore(tmp_path / "sidekick.db").close()
    assert user_version(tmp_path / "sidekick.db") == SCHEMA_VERSION


def test_a_state_database_from_before_versions_migrates_and_keeps_its_runs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sidekick.db"
    with closing(sqlite3.connect(path)) as db:
        db.executescript(UNVERSIONED_RUNS)
    store = StateStore(path)
    try:
        assert store.active_runs()["sidekick-alpha"].run_id == "r1"
        assert store.costs() == {"Alpha": 0.25} and store.pending_updates() == ([], 0)
        store.record_event("Alpha", "note", "the events table exists now")
    finally:
        store.close()
    assert user_version(path) == SCHEMA_VERSION
    reopened = StateStore(path)
    assert [run.run_id for run in reopened.runs("Alpha")] == ["r1"]
    reopened.close()


def test_a_state_database_of_a_newer_schema_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, config = state_dir_config(tmp_path)
    path = state / "sidekick.db"
    StateStore(path).close()
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StateFileError, match=f"schema {SCHEMA_VERSION + 1}"):
        StateStore(path)
    code, out, err = status(config, capsys)
    assert code == 1 and out == "" and err.count("\n") == 1 and "upgrade sidekick" in err
    assert user_version(path) == SCHEMA_VERSION + 1


def test_a_state_database_that_is_not_sqlite_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, config = state_dir_config(tmp_path)
    (state / "sidekick.db").write_bytes(b"this is not a database\n" * 200)
    code, out, err = status(config, capsys)
    assert code == 1 and out == "" and err.count("\n") == 1 and "not a usable state database" in err

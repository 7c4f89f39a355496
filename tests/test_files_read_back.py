"""Files the daemon wrote, read back by whatever version of sidekick runs now."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from sidekick.cli import main
from sidekick.health import HEARTBEAT_FORMAT, Heartbeat, heartbeat_path, write_heartbeat
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
    write_beat(state, {"pid": 42, "loop_at": time.time(), "watcher_at": "soon", "degraded": 3})
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

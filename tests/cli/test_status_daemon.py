"""``sidekick status`` says first when no daemon acts on the list it shows."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from sidekick.cli import main
from sidekick.health import Heartbeat, heartbeat_path, write_heartbeat


def beat(config: Path, age: float, *, stopped: bool = False) -> None:
    state = config.parent / "state"
    write_heartbeat(
        heartbeat_path(state), Heartbeat(os.getpid(), time.time() - age, stopped=stopped)
    )


def status(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["status", *extra, "--config", str(config)])
    return code, capsys.readouterr().out


def test_status_says_first_that_a_daemon_with_an_old_heartbeat_is_not_running(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beat(config, 124)
    code, out = status(config, capsys)
    assert code == 0
    assert out.splitlines()[0] == "daemon not running (heartbeat 124 s old)"
    code, out = status(config, capsys, "--json")
    daemon = json.loads(out)["daemon"]
    assert (daemon["running"], daemon["healthy"], round(daemon["heartbeat_age_s"])) == (
        False,
        False,
        124,
    )
    assert daemon["problem"] == "daemon not running (heartbeat 124 s old)"


def test_status_says_the_daemon_never_ran_when_there_is_no_heartbeat(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert status(config, capsys)[1].splitlines()[0] == "daemon not running (no heartbeat yet)"
    daemon = json.loads(status(config, capsys, "--json")[1])["daemon"]
    assert (daemon["running"], daemon["heartbeat_age_s"]) == (False, None)


def test_status_says_a_daemon_that_stopped_is_not_running(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beat(config, 3, stopped=True)
    first = status(config, capsys)[1].splitlines()[0]
    assert first == "daemon not running (it stopped; last heartbeat 3 s old)"


def test_status_of_a_running_daemon_starts_with_the_table(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beat(config, 0)
    assert not status(config, capsys)[1].startswith("daemon")
    daemon = json.loads(status(config, capsys, "--json")[1])["daemon"]
    assert (daemon["running"], daemon["healthy"], daemon["problem"]) == (True, True, "")


def test_status_shows_the_list_when_the_heartbeat_cannot_be_read(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    heartbeat_path(config.parent / "state").mkdir()
    code, out = status(config, capsys)
    assert code == 0
    assert out.startswith(str(heartbeat_path(config.parent / "state")))
    assert "PROJECT" in out

"""The exit bell: real Unix datagram sockets, and the real wrapper ringing it."""

from __future__ import annotations

import logging
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidekick.runners.base import read_exit_status
from sidekick.runners.bell import ExitBell, bell_path, ring
from tests.runners.helpers import wait_for, write_script


class Rings:
    """Counts rings and remembers what the run's exit file held at each."""

    def __init__(self, log: Path | None = None) -> None:
        self.log = log
        self.count = 0
        self.statuses: list[int | None] = []
        self.heard = threading.Event()

    def __call__(self) -> None:
        self.count += 1
        if self.log is not None:
            self.statuses.append(read_exit_status(self.log))
        self.heard.set()


@pytest.fixture
def bells() -> Iterator[list[ExitBell]]:
    started: list[ExitBell] = []
    yield started
    for bell in started:
        bell.stop()


def listening(bells: list[ExitBell], path: Path, rings: Rings) -> ExitBell:
    bell = ExitBell(path, rings)
    bell.start()
    bells.append(bell)
    return bell


def test_a_ring_reaches_the_listener_and_nobody_listening_is_not_an_error(
    tmp_path: Path, bells: list[ExitBell]
) -> None:
    path = bell_path(tmp_path / "state")
    assert ring(path) is False
    rings = Rings()
    listening(bells, path, rings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ring(path) is True
    assert rings.heard.wait(2)
    assert rings.count == 1


def test_a_state_directory_longer_than_a_socket_address_still_works(
    tmp_path: Path, bells: list[ExitBell]
) -> None:
    deep = tmp_path.joinpath(*(["a-rather-long-directory-name"] * 6))
    path = bell_path(deep)
    assert len(str(path).encode()) > 108
    rings = Rings()
    listening(bells, path, rings)
    assert ring(path)
    assert rings.heard.wait(2)


def test_a_socket_left_by_a_dead_daemon_is_replaced_and_stop_removes_it(
    tmp_path: Path, bells: list[ExitBell]
) -> None:
    path = bell_path(tmp_path)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(path))
    stale.close()
    assert path.exists() and ring(path) is False
    rings = Rings()
    bell = listening(bells, path, rings)
    assert ring(path) and rings.heard.wait(2)
    bell.stop()
    assert not path.exists()


def test_a_bell_that_cannot_bind_is_left_off_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    bell = ExitBell(not_a_directory / "agent-exit.sock", Rings())
    with caplog.at_level(logging.WARNING, logger="sidekick.runners.bell"):
        bell.start()
    bell.stop()
    assert "exit bell off" in caplog.text


def run_wrapper(log: Path, bell: Path, *argv: str) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-P", "-m", "sidekick.runners.agent_wrapper", "--log", str(log)]
    command += ["--bell", str(bell), "--", *argv]
    return subprocess.run(command, check=False, capture_output=True, timeout=30)


def test_the_wrapper_rings_after_the_exit_status_is_written(
    tmp_path: Path, bells: list[ExitBell]
) -> None:
    log = tmp_path / "logs" / "run.log"
    path = bell_path(tmp_path / "state")
    rings = Rings(log)
    listening(bells, path, rings)
    agent = write_script(tmp_path, "agent.sh", "echo working\nexit 5\n")
    assert run_wrapper(log, path, str(agent)).returncode == 5
    wait_for(lambda: rings.count == 1, timeout=2)
    assert rings.statuses == [5], "the status is on disk before the daemon is told"


def test_the_wrapper_without_a_listener_still_records_its_status(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    done = run_wrapper(log, bell_path(tmp_path / "nobody"), "true")
    assert done.returncode == 0 and done.stderr == b""
    assert read_exit_status(log) == 0

"""A stop cuts every wait of ``sidekick supervise`` short, so compose never needs a SIGKILL."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from sidekick.stopping import StopRequest
from sidekick.supervise import MAX_BACKOFF, Supervisor
from tests.polling import wait_until
from tests.sidekick_process import sidekick_process, sigterm

# A child that records the signal that stopped it, then exits with a known code.
RECORDING_CHILD = """
import signal, sys, time
def stop(signum, frame):
    open(sys.argv[1], "w").write(str(signum))
    sys.exit(7)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
open(sys.argv[1] + ".up", "w").close()
time.sleep(60)
"""


def run_in_thread(supervisor: Supervisor) -> tuple[threading.Thread, list[int]]:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(supervisor.run()), daemon=True)
    thread.start()
    return thread, codes


def test_a_stop_cuts_the_longest_restart_backoff_short(caplog: pytest.LogCaptureFixture) -> None:
    supervisor = Supervisor([sys.executable, "-c", "exit(3)"], first_backoff=MAX_BACKOFF)
    thread, codes = run_in_thread(supervisor)
    wait_until(lambda: "restarting in 30 s" in caplog.text, what="a failed child")
    asked = time.monotonic()
    supervisor.stop.request(signal.SIGTERM)
    thread.join(timeout=MAX_BACKOFF)
    assert codes == [3] and time.monotonic() - asked < 1.0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_reaches_the_running_child_as_the_same_signal(
    tmp_path: Path, signum: signal.Signals
) -> None:
    record = tmp_path / "signal"
    supervisor = Supervisor([sys.executable, "-c", RECORDING_CHILD, str(record)])
    thread, codes = run_in_thread(supervisor)
    wait_until(Path(f"{record}.up").exists, what="the child started")
    supervisor.stop.request(signum)
    thread.join(timeout=10)
    assert codes == [7] and record.read_text() == str(int(signum))


def test_sigterm_ends_sidekick_supervise_during_its_backoff_at_once(tmp_path: Path) -> None:
    broken = tmp_path / "config.yaml"
    broken.write_text("capacity: [\n")
    log = tmp_path / "supervise.log"
    with sidekick_process("supervise", "--config", str(broken), log=log) as process:
        wait_until(lambda: b"restarting in 2 s" in log.read_bytes(), what="a restart backoff")
        code, took = sigterm(process)
    assert code == 1 and took < 1.0


def test_a_signal_handler_wakes_a_long_wait_on_the_main_thread() -> None:
    stop = StopRequest()
    previous = signal.signal(signal.SIGUSR1, stop.on_signal)
    try:
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        started = time.monotonic()
        assert stop.wait(30) is True and time.monotonic() - started < 5
        assert stop.signum == signal.SIGUSR1 and stop.wait(30) is True
    finally:
        signal.signal(signal.SIGUSR1, previous)
        stop.close()


def test_a_wait_without_a_stop_lasts_its_timeout() -> None:
    stop = StopRequest()
    started = time.monotonic()
    assert stop.wait(0.2) is False and time.monotonic() - started >= 0.2
    stop.close()

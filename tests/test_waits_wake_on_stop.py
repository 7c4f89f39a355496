"""Every wait of the product ends at once when the process is asked to stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.polling import wait_until
from tests.sidekick_process import sidekick_process, sigterm

HEADER = "Project,Priority,Status,Agent,Last Update,Next Action,Deadline,GPU,Model\n"

# Each snippet enters one of the product's waits, as long as a minute, with the
# process's stop request wired to SIGTERM as the daemon wires it.
PRELUDE = """
import signal, sys, time
from pathlib import Path
from sidekick import stopping
signal.signal(signal.SIGTERM, stopping.process_stop().on_signal)
print("waiting", flush=True)
started = time.monotonic()
try:
    {wait}
except stopping.Stopping as exc:
    print(f"stopped after {{time.monotonic() - started:.2f}} s: {{exc}}", flush=True)
"""
WAITS = {
    "a Sheets request pacer with no token left": (
        "from sidekick.priorities.sheets import RequestPacer\n"
        "    pacer = RequestPacer(2)\n"
        "    for _ in range(3): pacer.acquire()"
    ),
    "a write-back waiting for an editor's lock file": (
        "from sidekick.priorities.csv_file import CsvPrioritySource\n"
        "    from sidekick.models import RowUpdate\n"
        "    source = CsvPrioritySource(Path(sys.argv[1]), lock_wait=60)\n"
        "    source.write_back([RowUpdate('alpha', None, 'x', 'y')])"
    ),
    "a plain stop-aware sleep": "stopping.sleep(60)",
}


def a_list_open_in_libreoffice(tmp_path: Path) -> Path:
    csv = tmp_path / "priorities.csv"
    csv.write_text(HEADER + "alpha,1,Pending,,,,,,\n")
    (tmp_path / ".~lock.priorities.csv#").write_text("someone,host\n")
    return csv


@pytest.mark.parametrize("wait", WAITS.values(), ids=WAITS.keys())
def test_a_stop_signal_ends_the_wait_at_once(tmp_path: Path, wait: str) -> None:
    csv = a_list_open_in_libreoffice(tmp_path)
    script = PRELUDE.format(wait=wait)
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(csv)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "waiting\n"
        wait_until(lambda: "poll" in main_thread_wait(process.pid), what="the wait began")
        asked = time.monotonic()
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
        assert time.monotonic() - asked < 1.0 and "stopped after" in out
        assert f"stop requested (signal {int(signal.SIGTERM)})" in out
    finally:
        process.kill()
        process.wait()


def main_thread_wait(pid: int) -> str:
    """Where the kernel has the process's main thread waiting."""
    try:
        return Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return ""


def test_sigterm_cuts_a_reconcile_waiting_for_a_writer_short(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    csv = tmp_path / "priorities.csv"
    csv.write_text(HEADER + "alpha,1,Pending,,,,,,\n")
    config = tmp_path / "config.yaml"
    config.write_text(
        "daemon:\n  state_dir: state\npriority_source:\n  csv:\n    lock_wait: 60\n"
        "projects:\n  alpha: code\nagents:\n  default:\n    command: [sh, -c, 'true']\n"
        "    claude: false\n"
    )
    log = tmp_path / "daemon.log"
    # A program that keeps the list open for writing: the daemon waits for its save.
    with csv.open("a"), sidekick_process("run", "--config", str(config), log=log) as daemon:
        wait_until(lambda: b"daemon started" in log.read_bytes(), what="the daemon started")
        wait_until(lambda: "poll" in main_thread_wait(daemon.pid), what="the wait began")
        code, took = sigterm(daemon)
    assert code == 0 and took < 2.0
    assert b"reconcile cut short: the daemon is stopping" in log.read_bytes()
    assert os.path.exists(tmp_path / "state" / "heartbeat.json")

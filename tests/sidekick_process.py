"""The ``sidekick`` command as a real process, for tests of how it stops."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def sidekick_process(*args: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m sidekick ARGS`` with its output in ``log``; killed if still running after."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sidekick", *args], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def sigterm(process: subprocess.Popen[bytes]) -> tuple[int, float]:
    """Send SIGTERM; the exit code, and how many seconds the process took to end."""
    asked = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=30)
    return code, time.monotonic() - asked

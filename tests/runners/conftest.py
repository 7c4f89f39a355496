from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidekick.runners.tmux import TmuxRunner
from tests.needs import missing


@pytest.fixture
def tmux_socket() -> Iterator[Path]:
    """A socket of our own whose directory does not exist yet; its server dies with the test.

    Under the system temp directory rather than tmp_path: a unix socket path
    must stay under ~100 bytes, and pytest's per-test directories can be longer.
    """
    if shutil.which("tmux") is None:
        missing("tmux is not installed")
    base = Path(tempfile.mkdtemp(prefix="sk-"))
    socket = base / "tmux" / "sock"
    yield socket
    subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True, check=False)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def tmux_runner(tmux_socket: Path) -> Iterator[TmuxRunner]:
    """The runner; agents that outlived their tmux server are stopped with it."""
    runner = TmuxRunner(tmux_socket, poll_seconds=0.02)
    yield runner
    runner.end_all()

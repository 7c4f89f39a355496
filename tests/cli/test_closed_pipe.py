"""Every command ends quietly when the reader of its output goes away (``| head``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_into_closed_pipe(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command, its stdout a pipe whose reader has already gone: its first flush fails."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "sidekick", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "argv",
    [
        ["context", "Shop"],
        ["context", "Shop", "--json"],
        ["status"],
        ["status", "--json"],
        ["validate"],
        ["dockerfile", "Shop"],
    ],
)
def test_a_command_whose_reader_closed_the_pipe_ends_without_a_traceback(
    argv: list[str], config: Path
) -> None:
    done = run_into_closed_pipe([*argv, "--config", str(config)], config.parent)
    assert done.stderr == ""
    # Python's exit status for output that could not be written (its note on SIGPIPE).
    assert done.returncode == 1


@pytest.mark.parametrize(
    "argv", [["--help"], ["runs", "--help"], ["prod", "--help"], ["--version"]]
)
def test_help_into_a_closed_pipe_ends_without_a_traceback(argv: list[str], config: Path) -> None:
    done = run_into_closed_pipe(argv, config.parent)
    assert done.stderr == ""
    # argparse drops a help text it cannot write and exits as after --help.
    assert done.returncode in (0, 1)


def test_a_reader_that_stops_after_a_few_lines_gets_no_traceback(config: Path) -> None:
    """``sidekick context Shop | head -1``, with a real early reader."""
    writer = subprocess.Popen(
        [sys.executable, "-m", "sidekick", "context", "Shop", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert writer.stdout is not None and writer.stderr is not None
    writer.stdout.read(1)
    writer.stdout.close()
    assert writer.stderr.read() == b""
    assert writer.wait(timeout=60) in (0, 1)

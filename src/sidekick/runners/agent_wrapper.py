"""Runs one agent inside its tmux pane and records how it ended.

Usage::

    python -P -m sidekick.runners.agent_wrapper --log LOG [--cwd DIR] [--bell SOCK] -- ARGV...

The agent runs as a child in its own process group (its own session), so a
signal meant for it reaches everything it started and nothing else. Everything
it prints (stdout and stderr) is copied to the run's log file and to the pane,
so a person who attaches sees it live. SIGTERM, SIGINT and SIGHUP are forwarded
to the agent's group; :data:`FORCE_SIGNAL` makes the wrapper SIGKILL the group.
When the agent ends, whatever is left of its group is killed, and the exit
status (128+N for a signal N) is written atomically beside the log: that file,
not the pane, is the truth about how the run ended. The wrapper exits with the
same status. After a hangup (the pane itself went away) no status is written:
the run was interrupted, it did not end. Either way the wrapper rings the
daemon's exit bell last (see :mod:`sidekick.runners.bell`), so the daemon
reconciles at once instead of at its next poll.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from sidekick.runners.base import exit_status_path
from sidekick.runners.bell import ring

logger = logging.getLogger(__name__)

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
FORCE_SIGNAL = signal.SIGUSR1
"""Sent by a runner whose grace period ran out: the wrapper SIGKILLs the agent's group."""

EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126
SIGNAL_EXIT_BASE = 128
CHUNK_BYTES = 65536
DRAIN_SECONDS = 5.0


@dataclass(frozen=True)
class WrapperArgs:
    log: Path
    cwd: Path | None
    argv: tuple[str, ...]
    bell: Path | None = None


def parse_args(args: Sequence[str]) -> WrapperArgs:
    """Split at the first ``--`` so the agent's own arguments are never parsed here."""
    parser = argparse.ArgumentParser(prog="python -m sidekick.runners.agent_wrapper")
    parser.add_argument("--log", type=Path, required=True, help="the run's log file")
    parser.add_argument("--cwd", type=Path, default=None, help="the agent's working directory")
    parser.add_argument("--bell", type=Path, default=None, help="the daemon's exit bell socket")
    if "--" not in args:
        parser.error("the agent's command must follow '--'")
    split = list(args).index("--")
    options = parser.parse_args(list(args[:split]))
    command = tuple(args[split + 1 :])
    if not command:
        parser.error("the agent's command after '--' is empty")
    return WrapperArgs(log=options.log, cwd=options.cwd, argv=command, bell=options.bell)


def status_from_returncode(returncode: int) -> int:
    """Shell convention: a child killed by signal N ends with 128+N."""
    return SIGNAL_EXIT_BASE - returncode if returncode < 0 else returncode


def write_exit_status(log_path: Path, code: int) -> None:
    """Temp file, fsync, rename, fsync the directory: a reader sees all of it or nothing."""
    target = exit_status_path(log_path)
    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, f"{code}\n".encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, target)
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    # Without it a power cut can lose the rename even though the data was synced.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Sink:
    """One output (log file or pane) that stops being written to after its first failure."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name
        self.broken = False

    def write(self, data: bytes) -> None:
        if self.broken:
            return
        try:
            _write_all(self.fd, data)
        except OSError as error:
            # A pane whose tmux server died gives EIO; the log must keep going regardless.
            self.broken = True
            logger.debug("stopped copying to %s: %s", self.name, error)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def signal_group(pgid: int, signum: int) -> None:
    """Signal a process group that may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


class Supervisor:
    """Owns the agent's process: starts it, forwards signals, collects its status."""

    def __init__(self, args: WrapperArgs, sinks: Sequence[Sink]) -> None:
        self.args = args
        self.sinks = tuple(sinks)
        self.process: subprocess.Popen[bytes] | None = None
        self.pending: list[int] = []
        self.ended = False
        self.hung_up = False

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.hung_up = self.hung_up or signum == signal.SIGHUP
        if self.ended:
            return
        if self.process is None:
            # Arrived before the agent existed: deliver it as soon as it does.
            self.pending.append(signum)
            return
        forwarded = signal.SIGKILL if signum == FORCE_SIGNAL else signum
        signal_group(self.process.pid, forwarded)

    def install_handlers(self) -> None:
        for signum in (*FORWARDED_SIGNALS, FORCE_SIGNAL):
            signal.signal(signum, self.on_signal)

    def run(self) -> int:
        """Start the agent, copy its output until it ends, and return its exit status."""
        try:
            process = self._spawn()
        except OSError as error:
            return self._report_spawn_failure(error)
        pump = threading.Thread(target=self._pump, args=(process,), daemon=True)
        pump.start()
        code = self._wait(process)
        pump.join(DRAIN_SECONDS)
        return code

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.process = subprocess.Popen(
            self.args.argv,
            cwd=self.args.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for signum in self.pending:
            self.on_signal(signum, None)
        return self.process

    def _report_spawn_failure(self, error: OSError) -> int:
        self._copy(f"sidekick: cannot start {self.args.argv[0]!r}: {error}\n".encode())
        return EXIT_NOT_FOUND if isinstance(error, FileNotFoundError) else EXIT_NOT_EXECUTABLE

    def _pump(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        fd = process.stdout.fileno()
        while chunk := os.read(fd, CHUNK_BYTES):
            self._copy(chunk)

    def _copy(self, data: bytes) -> None:
        for sink in self.sinks:
            sink.write(data)

    def _wait(self, process: subprocess.Popen[bytes]) -> int:
        if not hasattr(os, "waitid"):
            # Without waitid the pid is freed before the cleanup: a tiny reuse race, accepted.
            returncode = process.wait()
            self._end(process.pid)
            return status_from_returncode(returncode)
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        # The agent is a zombie now, so its pid (= its group id) cannot be reused
        # while we clean up: whatever it left running in its group ends with it,
        # and the pipe those leftovers held open closes so the copy can finish.
        self._end(process.pid)
        return status_from_returncode(process.wait())

    def _end(self, pgid: int) -> None:
        self.ended = True
        signal_group(pgid, signal.SIGKILL)


def _open_log(log_path: Path) -> int:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def run(args: WrapperArgs) -> int:
    """Run the agent to its end, record its exit status, and return it."""
    log_fd = _open_log(args.log)
    try:
        sinks = (Sink(log_fd, str(args.log)), Sink(sys.stdout.fileno(), "the pane"))
        supervisor = Supervisor(args, sinks)
        supervisor.install_handlers()
        code = supervisor.run()
    finally:
        os.close(log_fd)
    # After a hangup the pane went away under the agent (its session or the tmux
    # server was killed): that is an interruption, not an outcome, so no status is
    # written and the daemon records the run as interrupted and queues it again.
    if not supervisor.hung_up:
        write_exit_status(args.log, code)
    if args.bell is not None:
        ring(args.bell)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="sidekick wrapper: %(message)s")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

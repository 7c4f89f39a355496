"""Runs one agent inside its tmux pane and records how it ended.

Usage::

    python -P -m sidekick.runners.agent_wrapper --launch FILE
    python -P -m sidekick.runners.agent_wrapper --log LOG [--cwd DIR] [--bell SOCK]
        [--stdin FILE] [--lock FILE] -- ARGV...

The launch file (JSON, owner-only, removed once read) holds everything the
second form takes on its command line plus the agent's environment, so the
tmux command that starts a pane stays short whatever the agent is given.

The agent runs as a child in its own process group (its own session), so a
signal meant for it reaches everything it started and nothing else; its
standard input is the ``--stdin`` file (its prompt) or /dev/null. Everything
it prints (stdout and stderr) is copied to the run's log file and to the pane,
so a person who attaches sees it live. SIGTERM and SIGINT are forwarded to the
agent's group; :data:`FORCE_SIGNAL` makes the wrapper SIGKILL the group.

A hangup is not forwarded: it means the pane went away (its session or the
whole tmux server was killed), not that the agent should stop. The agent
works on, its output still goes to the log, and the wrapper records how it
really ended. Meanwhile the flock on ``--lock`` (see
:mod:`sidekick.runners.agent_lock`), held by the wrapper and inherited by the
agent, tells the runner the project's agent is alive though its pane is gone.

When the agent ends, whatever is left of its group is killed, and the exit
status (128+N for a signal N) is written atomically beside the log: that file,
not the pane, is the truth about how the run ended. The wrapper exits with the
same status, and rings the daemon's exit bell last (see
:mod:`sidekick.runners.bell`), so the daemon reconciles at once instead of at
its next poll.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from sidekick.runners import agent_lock
from sidekick.runners.base import exit_status_path
from sidekick.runners.bell import ring

logger = logging.getLogger(__name__)

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT)
FORCE_SIGNAL = signal.SIGUSR1
"""Sent by a runner whose grace period ran out: the wrapper SIGKILLs the agent's group."""

EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126
EXIT_LOCKED = 75
"""Not started: another agent of the same project holds its lock (EX_TEMPFAIL)."""
SIGNAL_EXIT_BASE = 128
CHUNK_BYTES = 65536
DRAIN_SECONDS = 5.0


@dataclass(frozen=True)
class WrapperArgs:
    log: Path
    cwd: Path | None
    argv: tuple[str, ...]
    bell: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    stdin: Path | None = None
    lock: Path | None = None


def parse_args(args: Sequence[str]) -> WrapperArgs:
    """Split at the first ``--`` so the agent's own arguments are never parsed here."""
    parser = argparse.ArgumentParser(prog="python -m sidekick.runners.agent_wrapper")
    parser.add_argument("--launch", type=Path, default=None, help="a launch file (JSON)")
    parser.add_argument("--log", type=Path, default=None, help="the run's log file")
    parser.add_argument("--cwd", type=Path, default=None, help="the agent's working directory")
    parser.add_argument("--bell", type=Path, default=None, help="the daemon's exit bell socket")
    parser.add_argument("--stdin", type=Path, default=None, help="the agent's standard input")
    parser.add_argument("--lock", type=Path, default=None, help="the project's agent lock")
    if "--" not in args:
        options = parser.parse_args(list(args))
        if options.launch is None:
            parser.error("the agent's command must follow '--' (or come in --launch)")
        return read_launch_file(options.launch)
    split = list(args).index("--")
    options = parser.parse_args(list(args[:split]))
    command = tuple(args[split + 1 :])
    if options.log is None:
        parser.error("--log is required")
    if not command:
        parser.error("the agent's command after '--' is empty")
    return WrapperArgs(
        log=options.log,
        cwd=options.cwd,
        argv=command,
        bell=options.bell,
        stdin=options.stdin,
        lock=options.lock,
    )


def launch_file_text(args: WrapperArgs) -> str:
    """What :func:`read_launch_file` reads back: the whole launch as JSON."""
    data = {
        "log": str(args.log),
        "cwd": None if args.cwd is None else str(args.cwd),
        "argv": list(args.argv),
        "env": dict(args.env),
        "bell": None if args.bell is None else str(args.bell),
        "stdin": None if args.stdin is None else str(args.stdin),
        "lock": None if args.lock is None else str(args.lock),
    }
    return json.dumps(data)


def read_launch_file(path: Path) -> WrapperArgs:
    """Read the launch, then remove its file: it may hold the API key."""
    data = json.loads(path.read_text(encoding="ascii"))
    path.unlink(missing_ok=True)
    return WrapperArgs(
        log=Path(data["log"]),
        cwd=_optional_path(data.get("cwd")),
        argv=tuple(str(a) for a in data["argv"]),
        bell=_optional_path(data.get("bell")),
        env={str(k): str(v) for k, v in data.get("env", {}).items()},
        stdin=_optional_path(data.get("stdin")),
        lock=_optional_path(data.get("lock")),
    )


def _optional_path(value: object) -> Path | None:
    return None if value is None else Path(str(value))


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

    def __init__(
        self, args: WrapperArgs, sinks: Sequence[Sink], lock_fd: int | None = None
    ) -> None:
        self.args = args
        self.sinks = tuple(sinks)
        self.lock_fd = lock_fd
        self.process: subprocess.Popen[bytes] | None = None
        self.pending: list[int] = []
        self.ended = False

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.ended:
            return
        if self.process is None:
            # Arrived before the agent existed: deliver it as soon as it does.
            self.pending.append(signum)
            return
        forwarded = signal.SIGKILL if signum == FORCE_SIGNAL else signum
        signal_group(self.process.pid, forwarded)

    @staticmethod
    def on_hangup(_signum: int, _frame: FrameType | None) -> None:
        # The pane is gone, the agent is not: keep copying to the log and wait for it.
        # A handler, not SIG_IGN: an ignored signal would stay ignored in the agent.
        return

    def install_handlers(self) -> None:
        for signum in (*FORWARDED_SIGNALS, FORCE_SIGNAL):
            signal.signal(signum, self.on_signal)
        signal.signal(signal.SIGHUP, self.on_hangup)

    def run(self) -> int:
        """Start the agent, copy its output until it ends, and return its exit status."""
        try:
            process = self._spawn()
        except (OSError, ValueError) as error:  # ValueError: a NUL in argv or environment
            return self._report_spawn_failure(error)
        pump = threading.Thread(target=self._pump, args=(process,), daemon=True)
        pump.start()
        code = self._wait(process)
        pump.join(DRAIN_SECONDS)
        return code

    def _spawn(self) -> subprocess.Popen[bytes]:
        with _standard_input(self.args.stdin) as stdin:
            self.process = subprocess.Popen(
                self.args.argv,
                cwd=self.args.cwd,
                env={**os.environ, **self.args.env},
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # The agent holds the project's lock too: it stays "alive" if the wrapper dies.
                pass_fds=() if self.lock_fd is None else (self.lock_fd,),
            )
        self._record_pids(self.process.pid)
        for signum in self.pending:
            self.on_signal(signum, None)
        return self.process

    def _record_pids(self, agent_pid: int) -> None:
        if self.args.lock is None:
            return
        ids = agent_lock.ProcessIds(wrapper=os.getpid(), agent_group=agent_pid)
        try:
            agent_lock.write_pids(self.args.log, ids)
        except OSError as error:
            logger.warning("cannot record the agent's pids: %s", error)

    def _report_spawn_failure(self, error: OSError | ValueError) -> int:
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


@contextlib.contextmanager
def _standard_input(path: Path | None) -> Iterator[int]:
    """The prompt file, read by the agent at its own pace; /dev/null without one."""
    fd = os.open(path if path is not None else os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def _open_log(log_path: Path) -> int:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def run(args: WrapperArgs) -> int:
    """Run the agent to its end, record its exit status, and return it."""
    log_fd = _open_log(args.log)
    lock_fd: int | None = None
    try:
        sinks = (Sink(log_fd, str(args.log)), Sink(sys.stdout.fileno(), "the pane"))
        lock_fd = _take_lock(args.lock, sinks)
        if args.lock is not None and lock_fd is None:
            code = EXIT_LOCKED
        else:
            supervisor = Supervisor(args, sinks, lock_fd)
            supervisor.install_handlers()
            code = supervisor.run()
    finally:
        os.close(log_fd)
    # Written even after a hangup: the agent ran to its end, and this is how it ended.
    write_exit_status(args.log, code)
    if lock_fd is not None:
        os.close(lock_fd)
    if args.bell is not None:
        ring(args.bell)
    return code


def _take_lock(path: Path | None, sinks: Sequence[Sink]) -> int | None:
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(exist_ok=True)
    fd = agent_lock.acquire(path)
    if fd is None:
        message = f"sidekick: not started: another agent of this project holds {path}\n"
        for sink in sinks:
            sink.write(message.encode())
    return fd


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="sidekick wrapper: %(message)s")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

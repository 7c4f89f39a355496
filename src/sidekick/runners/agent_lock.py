"""A project's agent is alive while its lock is held, whatever happened to its tmux pane.

The tmux session is only where an agent's output is shown: a person, or a
crash, can kill the session or the whole tmux server while the agent works on.
So the agent wrapper holds an ``flock`` on ``<lock dir>/<key>.lock`` for as
long as the agent (or anything of its process group) runs, and passes the
locked descriptor down, so an agent that outlives a killed wrapper still holds
it. The runner writes which run the lock belongs to (run id, log path) before
the wrapper starts; the wrapper writes its pid and the agent's process group
beside the run's log. The kernel drops the lock when the last holder exits,
so a crashed daemon, wrapper or tmux server can never leave a stale "alive".
Once the run's exit status is written the run is over, even if something the
agent started (and the wrapper is killing) still holds the descriptor: the
next run's record replaces the file, so its lock is a new one.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sidekick.runners.base import write_private

logger = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"
PIDS_SUFFIX = ".pids"
ACQUIRE_SECONDS = 2.0
ACQUIRE_STEP = 0.01


@dataclass(frozen=True)
class LockRecord:
    """Which run a key's lock was last taken for."""

    run_id: str
    log_path: Path
    started: float

    def to_json(self) -> str:
        data = {"run_id": self.run_id, "log": str(self.log_path), "started": self.started}
        return json.dumps(data) + "\n"

    @classmethod
    def from_text(cls, text: str) -> LockRecord | None:
        try:
            data = json.loads(text)
            return cls(str(data["run_id"]), Path(str(data["log"])), float(data["started"]))
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class ProcessIds:
    """The wrapper's pid and the agent's process group, written once the agent exists."""

    wrapper: int
    agent_group: int


def lock_path(lock_dir: Path, key: str) -> Path:
    return lock_dir / f"{key}{LOCK_SUFFIX}"


def pids_path(log_path: Path) -> Path:
    return log_path.with_name(log_path.name + PIDS_SUFFIX)


def write_record(path: Path, record: LockRecord) -> None:
    write_private(path, record.to_json().encode("utf-8"))


def read_record(path: Path) -> LockRecord | None:
    try:
        return LockRecord.from_text(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def is_held(path: Path) -> bool:
    """Whether some process holds the lock (probing takes it for an instant)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    finally:
        os.close(fd)
    return False


def acquire(
    path: Path,
    timeout: float = ACQUIRE_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int | None:
    """The locked descriptor, or None when another holder keeps it past ``timeout``.

    Waits a little because a runner's :func:`is_held` probe takes the lock for
    an instant; a live agent holds it far longer than that.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    deadline = clock() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if clock() >= deadline:
                os.close(fd)
                return None
            sleep(ACQUIRE_STEP)


def write_pids(log_path: Path, ids: ProcessIds) -> None:
    text = json.dumps({"wrapper": ids.wrapper, "agent_group": ids.agent_group}) + "\n"
    write_private(pids_path(log_path), text.encode("ascii"))


def read_pids(log_path: Path) -> ProcessIds | None:
    try:
        data = json.loads(pids_path(log_path).read_text(encoding="ascii"))
        return ProcessIds(int(data["wrapper"]), int(data["agent_group"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None

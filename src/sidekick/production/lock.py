"""One deploy per project at a time, across processes.

An exclusive ``flock`` on a file in the state directory: the kernel drops it when
the holder dies, however it dies, so a crash never leaves a lock to clean up by
hand. What a crashed deploy left half done is found through its release record
(still ``deploying``) and its journal, not through the lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sidekick.production.errors import DeployLocked


@contextmanager
def deploy_lock(path: Path, project: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "another process"
            raise DeployLocked(project, f"another deploy is running (process {holder})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)

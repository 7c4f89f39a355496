"""Whether a program holds a file open for writing.

A save in place (``open`` with truncate, then one or more ``write()`` calls)
leaves the file empty or half written until the writer closes it. Reading it
then serves a partial list, and replacing it then sends the writer's later
chunks into the replaced, unlinked file. So the CSV source waits while a
writer has the file open. Where /proc is not there (macOS, Windows) nothing
can be told and the answer is "no writers"; the displaced-file check in the
source still catches a save cut in two.

The question is put to the kernel first: a read lease (``F_SETLEASE``) is
refused with EAGAIN exactly while some process has the file open for writing,
and costs microseconds. It is released at once; a writer that opens the file in
that instant waits for the release and sends this process SIGURG, which is
ignored by default (the lease's own SIGIO would end the process). Where a lease
cannot be taken (a file owned by another user without CAP_LEASE, a filesystem
without leases) every process's open files in /proc are looked through instead.

A lease can also be held for a few system calls (``read_lease``): while it is
held, a program that opens the file for writing waits, and the holder can see
that it tried (``lease_broken``). The write-back holds one across its swap, so
a save in place that starts in that instant is noticed instead of landing in
the replaced file. Source: fcntl(2), "Leases".
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

_PROC = Path("/proc")
_WRITE_MODES = os.O_WRONLY | os.O_RDWR
# Linux's values; the fcntl module names them only on some Python versions.
_F_SETLEASE = getattr(fcntl, "F_SETLEASE", 1024)
_F_SETSIG = getattr(fcntl, "F_SETSIG", 10)
_F_GETLEASE = getattr(fcntl, "F_GETLEASE", 1025)

Identity = tuple[int, int]


def is_being_written(fd: int, path: Path) -> bool:
    """Whether any process has the file open for writing (``fd``: our read-only descriptor)."""
    verdict = _lease_verdict(fd)
    if verdict is not None:
        return verdict
    return bool(writers_of(path, identity_of(os.fstat(fd))))


def _lease_verdict(fd: int) -> bool | None:
    """True/False from a read lease; None when no lease can be taken here."""
    with read_lease(fd) as held:
        return None if held is None else not held


@contextlib.contextmanager
def read_lease(fd: int) -> Iterator[bool | None]:
    """Hold a read lease on ``fd`` (opened read-only) for the ``with`` block.

    Yields True while held, False when a program has the file open for writing
    (no lease then), None where no lease can be taken (not Linux, another
    user's file without CAP_LEASE, a filesystem without leases). A writer that
    opens the file meanwhile waits until the block ends (at most
    /proc/sys/fs/lease-break-time seconds), so keep the block to a few calls.
    """
    held = _take_lease(fd)
    try:
        yield held
    finally:
        if held:
            fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_UNLCK)


def lease_broken(fd: int) -> bool:
    """Whether a program tried to open the file for writing since the lease was taken."""
    return bool(fcntl.fcntl(fd, _F_GETLEASE) != fcntl.F_RDLCK)


def _take_lease(fd: int) -> bool | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fcntl.fcntl(fd, _F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        if exc.errno == errno.EAGAIN:
            return False
        logger.debug("no lease on fd %d (%s); looking through /proc", fd, exc)
        return None
    return True


def identity_of(status: os.stat_result) -> Identity:
    return status.st_dev, status.st_ino


def writers_of(path: Path, identity: Identity | None = None) -> list[int]:
    """PIDs with ``path`` (the file now at that name, or ``identity``) open for writing."""
    if identity is None:
        try:
            identity = identity_of(os.stat(path))
        except FileNotFoundError:
            return []
    where = str(path)
    found = []
    for pid, fd_dir in _process_fd_dirs():
        if _holds_for_writing(fd_dir, where, identity):
            found.append(pid)
    return found


def _process_fd_dirs() -> list[tuple[int, Path]]:
    try:
        names = os.listdir(_PROC)
    except OSError:
        return []
    return [(int(name), _PROC / name / "fd") for name in names if name.isdigit()]


def _holds_for_writing(fd_dir: Path, where: str, identity: Identity) -> bool:
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        # Gone, or another user's process we may not look into.
        return False
    for fd in fds:
        link = fd_dir / fd
        try:
            # readlink first: it is cheaper than stat and rules out almost every descriptor.
            if not os.readlink(link).startswith(where):
                continue
            if identity_of(os.stat(link)) == identity and _opened_for_writing(fd_dir, fd):
                return True
        except OSError:
            continue
    return False


def _opened_for_writing(fd_dir: Path, fd: str) -> bool:
    info = (fd_dir.parent / "fdinfo" / fd).read_text()
    for line in info.splitlines():
        if line.startswith("flags:"):
            return bool(int(line.split()[1], 8) & _WRITE_MODES)
    return False

"""The exit bell: an agent that ends rings it, so the daemon reconciles at once.

It is a Unix datagram socket in the state directory. The agent wrapper sends
one datagram after it has written its exit status; the daemon's listener turns
each into a ring of its doorbell. A ring is only a hint and carries nothing:
the reconcile that follows reads the truth from the exit files and the runner.
A lost ring (daemon down, socket buffer full) costs latency, never a run: the
daemon's agent poll and periodic reconcile still find the ended agent.

Socket paths are limited to 107 bytes, and state directories can be longer,
so both ends reach the socket through ``/proc/self/fd/<dir fd>/<name>``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from sidekick.background import OnWorker, Worker

logger = logging.getLogger(__name__)

BELL_NAME = "agent-exit.sock"
RECEIVE_TIMEOUT = 0.5


def bell_path(state_dir: Path) -> Path:
    return Path(state_dir) / BELL_NAME


@contextlib.contextmanager
def _short_path(path: Path) -> Iterator[str]:
    """A path to ``path`` that fits in a socket address, valid inside the block."""
    directory = os.open(path.parent, os.O_PATH | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{directory}/{path.name}"
    finally:
        os.close(directory)


def ring(path: Path) -> bool:
    """Tell whoever listens at ``path`` that an agent ended; False when nobody heard."""
    try:
        with (
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender,
            _short_path(path) as address,
        ):
            sender.setblocking(False)
            sender.sendto(b"exit", address)
    except OSError:
        return False
    return True


class ExitBell(OnWorker):
    """Listens at the bell's socket on a thread of its own and calls ``on_ring`` per ring."""

    def __init__(self, path: Path, on_ring: Callable[[], None]) -> None:
        self.path = Path(path)
        self._on_ring = on_ring
        self._socket: socket.socket | None = None
        self._worker = Worker("exit-bell", self._listen)
        self.rings = 0

    def start(self) -> None:
        """Bind the socket (replacing one a previous daemon left) and start listening.

        A bell that cannot be bound is logged and left off: the daemon still
        notices ended agents by polling, only later.
        """
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            with _short_path(self.path) as address:
                listener.bind(address)
            os.chmod(self.path, 0o600)
        except OSError as exc:
            listener.close()
            logger.warning("exit bell off (agents' ends are noticed by polling): %s", exc)
            return
        listener.settimeout(RECEIVE_TIMEOUT)
        self._socket = listener
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop(timeout=RECEIVE_TIMEOUT * 4)
        if self._socket is not None:
            self._socket.close()
            self._socket = None
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _listen(self) -> None:
        assert self._socket is not None
        while not self._worker.stopping.is_set():
            self._worker.beat()
            try:
                self._socket.recv(64)
            except TimeoutError:
                continue
            except OSError as exc:
                logger.warning("exit bell stopped listening: %s", exc)
                return
            self.rings += 1
            self._on_ring()

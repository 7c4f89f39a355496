"""A stop request that every wait in the product wakes on.

A signal handler runs on the main thread between two bytecodes, possibly while
that thread holds the lock inside a ``threading.Event``; setting the event from
the handler could then deadlock. Writing one byte into a socket pair is safe
from a handler and from any thread, and wakes a ``select`` at once.

The process-wide request is raised by the daemon's signal handlers; waits
inside a reconcile (a Sheets retry backoff, an editor's lock, an agent's stop
grace) sleep through :func:`sleep`, which ends at once on it by raising
:class:`Stopping`, so no loop retries on without its pause.
"""

from __future__ import annotations

import select
import socket
from contextlib import suppress
from types import FrameType


class StopRequest:
    """Raised once (by a signal or a thread), then seen by every :meth:`wait` at once."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._requested = False
        self.signum = 0

    def request(self, signum: int = 0) -> None:
        """Ask everything waiting to stop; safe to call from a signal handler."""
        self.signum = signum or self.signum
        self._requested = True
        # A full buffer already holds a wake-up; a closed one has no waiter left.
        with suppress(OSError):
            self._writer.send(b"\0")

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.request(signum)

    @property
    def requested(self) -> bool:
        return self._requested

    def wait(self, timeout: float | None) -> bool:
        """Sleep up to ``timeout`` seconds, waking at once on a stop; True once stopping."""
        if not self._requested:
            # poll, not select: any descriptor number, and one poller per waiting thread.
            poller = select.poll()
            poller.register(self._reader, select.POLLIN)
            poller.poll(None if timeout is None else max(0.0, timeout) * 1000)
        return self._requested

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


class Stopping(BaseException):
    """The process was asked to stop during a wait.

    A BaseException, as SystemExit is: a step that isolates its failures with
    ``except Exception`` must not take a stop for one of them.
    """


_PROCESS_STOP = StopRequest()


def process_stop() -> StopRequest:
    """The stop request of this process, raised by its signal handlers."""
    return _PROCESS_STOP


def sleep(seconds: float) -> None:
    """``time.sleep`` that the process's stop request ends at once by raising Stopping."""
    if _PROCESS_STOP.wait(seconds):
        raise Stopping(f"stop requested (signal {_PROCESS_STOP.signum})")

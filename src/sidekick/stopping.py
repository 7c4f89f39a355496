"""A stop request that every wait in the product wakes on.

A signal handler runs on the main thread between two bytecodes, possibly while
that thread holds the lock inside a ``threading.Event``; setting the event from
the handler could then deadlock. Writing one byte into a socket pair is safe
from a handler and from any thread, and wakes a ``select`` at once.
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
            select.select([self._reader], [], [], timeout)
        return self._requested

    def sleep(self, seconds: float) -> None:
        """``time.sleep`` that a stop cuts short, for code that takes a sleep function."""
        self.wait(seconds)

    def close(self) -> None:
        self._reader.close()
        self._writer.close()

"""A Docker engine that answers badly on purpose, on a real Unix (or TCP) socket: what a
real engine cannot be made to send, for the real readers under test."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

# The answer to a request (its head as sent).
Answer = Callable[[bytes], bytes]


class FakeEngine:
    """Answers every request on its socket with the same bytes, or with what ``answer``
    gives for the request; with ``hold``, keeps the connection open after them until the
    client hangs up (as an engine that stalls). One connection at a time."""

    def __init__(
        self, listener: socket.socket, answer: bytes | Answer, *, hold: bool = False
    ) -> None:
        self.answer, self.hold = answer, hold
        self.listener = listener
        self.listener.listen(4)
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # the listener was closed: the test is over
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request and (data := conn.recv(4096)):
            request += data
        self.requests.append(request)
        try:
            conn.sendall(self.answer if isinstance(self.answer, bytes) else self.answer(request))
            while self.hold and conn.recv(4096):
                pass
        except OSError:
            pass  # the client hung up first, as it should on a bad answer

    def close(self) -> None:
        self.listener.close()

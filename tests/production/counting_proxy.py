"""A Unix socket in front of the engine's that counts the API requests passing through."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from pathlib import Path

from tests.containers.proxy import SocketProxy, _pipe

_REQUEST = re.compile(rb"(GET|POST|PUT|DELETE|HEAD) (/\S*) HTTP/1\.[01]\r\n")


class CountingProxy(SocketProxy):
    """Every request line a client sends, in order (method and path without the query)."""

    def __init__(self, path: Path, upstream: str) -> None:
        super().__init__(path, upstream)
        self.requests: list[str] = []

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()

    def _requests(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                for method, path in _REQUEST.findall(data):
                    self.requests.append(f"{method.decode()} {path.decode().split('?', 1)[0]}")
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def count(self, pattern: str) -> int:
        return sum(1 for request in self.requests if re.fullmatch(pattern, request))

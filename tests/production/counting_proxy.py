"""A Unix socket in front of the engine's that counts the API requests passing through."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from pathlib import Path

from tests.containers.proxy import SocketProxy

_REQUEST = re.compile(rb"(GET|POST|PUT|DELETE|HEAD) (/\S*) HTTP/1\.[01]\r\n")


class CountingProxy(SocketProxy):
    """Every request line a client sends, in order (method and path without the query)."""

    def __init__(self, path: Path, upstream: str) -> None:
        super().__init__(path, upstream)
        self.requests: list[str] = []

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.upstream)
            with self._lock:
                self._connections += [client, upstream]
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=_copy, args=(upstream, client), daemon=True).start()

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


def _copy(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)

"""Read-only calls to the engine's HTTP API straight over its Unix socket, without docker-py.

Why: ``sidekick prod status`` and ``sidekick prod logs`` are what a person runs most, and
they are measured against ``docker compose ps`` and ``docker logs`` (bench/bench_prod.py,
target <= 1.5x each). Measured on the 2-core CI machine (Python 3.11, engine API 1.41):
importing docker-py, with the requests and urllib3 it loads, costs 130-150 ms of CPU and
its ``auto`` version a ``/version`` round trip, while ``docker compose ps`` of a
10-container project takes 120-240 ms in all. With docker-py, status ran at 4.07x of
``compose ps`` (971 ms against 239 ms) and ``logs --tail 10000`` of a million-line log at
8.30x of ``docker logs`` (1247 ms against 150 ms). A bare socket costs about 3 ms to import,
http.client about 20 ms more (it loads the email parser and ssl), so these few GETs speak
HTTP themselves: HTTP/1.0, one connection each, so the engine sends a body as it is (over
HTTP/1.1 a log comes chunked, a chunk per line, each taken apart in Python) and ends it by
closing the socket; a chunked body is still taken apart, a block at a time. Every call
still passes through :class:`~sidekick.containers.engine.ContainerEngine`, which turns what
fails here into a ContainerError; an engine not on a Unix socket is reached through
docker-py as before. With these reads (and lazy imports, one container's log written a
block at a time), the bench measured status at 1.21-1.74x and logs at 1.43-3.29x over
runs on that machine under a load of 7-8; what remained was mostly the interpreter and the
configuration's imports (about 80 of 120 ms of CPU), against a Go client's 50, since
served by :mod:`sidekick.config_cache`.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import urlencode

READ_BLOCK = 1 << 16
# A response head larger than this is not the engine's answer.
HEAD_LIMIT = 1 << 16


class ResponseBody(Protocol):
    """A streamed body: ``read`` gives what has arrived (``b""`` at its end); ``close``,
    from any thread, ends it."""

    def read(self, size: int) -> bytes: ...

    def close(self) -> None: ...


class WireError(Exception):
    """The engine answered with an error status; ``message`` is the engine's own text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message


class Body:
    """A response body over its own connection, as the blocks arrive. A body that ends
    before the length its head gave raises ConnectionError, as a chunk that cannot be read
    does: a cut answer is never taken for a whole one."""

    def __init__(self, sock: socket.socket, first: bytes, headers: Mapping[str, str]) -> None:
        self._sock = sock
        self._closed = False
        arrived = _arrived(sock, first)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._blocks = unchunked(arrived)
        else:
            self._blocks = _counted(arrived, _content_length(headers))

    def read(self, size: int = READ_BLOCK) -> bytes:
        try:
            return next(self._blocks, b"")
        except OSError:
            if self._closed:
                return b""  # closed on purpose (a followed log): its end, not a fault
            raise

    def read_all(self) -> bytes:
        return b"".join(iter(self.read, b""))

    def close(self) -> None:
        self._closed = True
        # shutdown wakes a thread blocked reading this body (a followed log).
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()


class Wire:
    """GETs of the engine's API on the Unix socket at ``path``."""

    def __init__(self, path: str, timeout: float, version: str = "auto") -> None:
        self.path = path
        self.timeout = timeout
        self._version = None if version == "auto" else version

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        body = self.get(path, params, timeout=self.timeout)
        try:
            data = body.read_all()
        finally:
            body.close()
        try:
            return json.loads(data)
        except ValueError:
            raise ConnectionError(f"the engine's answer to {path} is not JSON") from None

    def get(
        self, path: str, params: Mapping[str, Any] | None = None, *, timeout: float | None
    ) -> Body:
        """The body of ``GET /v<version><path>``; an error status raises :class:`WireError`."""
        query = f"?{urlencode(params)}" if params else ""
        status, body, _ = self._exchange(f"/v{self.version()}{path}{query}", timeout)
        if status >= 400:
            raise WireError(status, _message(body))
        return body

    def version(self) -> str:
        """The configured API version, else the engine's own, asked once (as the docker
        CLI does) with ``/_ping``."""
        if self._version is None:
            status, body, headers = self._exchange("/_ping", self.timeout)
            body.close()
            version = headers.get("api-version")
            if status >= 400 or not version:
                raise ConnectionError(f"the engine's /_ping answered {status} without a version")
            self._version = version
        return self._version

    def _exchange(self, target: str, timeout: float | None) -> tuple[int, Body, dict[str, str]]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
            request = f"GET {target} HTTP/1.0\r\nHost: docker\r\n\r\n"
            sock.sendall(request.encode("ascii"))
            status, headers, first = _head(sock)
            sock.settimeout(timeout)
        except BaseException:
            sock.close()
            raise
        return status, Body(sock, first, headers), headers


def _head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (names in lower case) and the body's first bytes."""
    data = b""
    while (end := data.find(b"\r\n\r\n")) < 0:
        if len(data) > HEAD_LIMIT:
            raise ConnectionError(
                f"the engine's answer has no end of its head in its first {len(data)} bytes"
                f" (more than {HEAD_LIMIT}): not the engine's API"
            )
        more = sock.recv(READ_BLOCK)
        if not more:
            raise ConnectionError(_closed_in_head(data))
        data += more
    status_line, *lines = data[:end].decode("latin-1").split("\r\n")
    try:
        status = int(status_line.split(" ", 2)[1])
    except (IndexError, ValueError):
        raise ConnectionError(f"not an HTTP answer: {status_line[:80]!r}") from None
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, data[end + 4 :]


def _closed_in_head(data: bytes) -> str:
    if not data:
        return "the engine closed the connection without an answer"
    return f"the engine closed the connection after {len(data)} bytes of its answer's head"


def _content_length(headers: Mapping[str, str]) -> int | None:
    """The body's length from its head; None: up to the end of the connection."""
    text = headers.get("content-length")
    if not text:
        return None
    if not text.isascii() or not text.isdigit():
        raise ConnectionError(f"the engine's answer gives a Content-Length of {text[:40]!r}")
    return int(text)


def _message(body: Body) -> str:
    """The engine's error text: ``{"message": ...}``, or the body as it is."""
    try:
        text = body.read_all().decode("utf-8", "replace")
    finally:
        body.close()
    try:
        found = json.loads(text)
    except ValueError:
        return text.strip()
    return str(found.get("message", text)).strip() if isinstance(found, dict) else text.strip()


def _arrived(sock: socket.socket, first: bytes) -> Callable[[int], bytes]:
    """Reads of what has arrived: the bytes already read with the head, then the socket's."""
    pending = [first] if first else []

    def read(size: int) -> bytes:
        return pending.pop() if pending else sock.recv(size)

    return read


def _counted(read: Callable[[int], bytes], length: int | None) -> Iterator[bytes]:
    """A body of ``length`` bytes (None: up to the end of the connection); one that ends
    short of its length raises ConnectionError once what came is given."""
    left = length
    while left is None or left > 0:
        data = read(READ_BLOCK)
        if not data:
            if left is not None:
                raise ConnectionError(_cut_short(length or 0, left))
            return
        if left is not None:
            data = data[:left]
            left -= len(data)
        yield data


def _cut_short(length: int, left: int) -> str:
    return (
        f"the engine closed the connection {left} bytes short of the answer's"
        f" {length} (Content-Length): the answer is cut"
    )


def unchunked(read: Callable[[int], bytes], block: int = READ_BLOCK) -> Iterator[bytes]:
    """The data of an HTTP/1.1 chunked body, a block at a time (``read`` gives what has
    arrived, up to ``block``); ends at the last chunk. A stream that ends before it, or a
    chunk size that is not a number, raises ConnectionError once the chunks before are given."""
    pending = b""
    while data := read(block):
        pending = pending + data if pending else data
        pieces: list[bytes] = []
        offset, end = 0, len(pending)
        while (eol := pending.find(b"\r\n", offset)) >= 0:
            size = _chunk_size(pending[offset:eol])
            if size < 0:
                if pieces:
                    yield b"".join(pieces)
                raise ConnectionError(_bad_chunk(pending[offset:eol]))
            if size == 0:
                if pieces:
                    yield b"".join(pieces)
                return
            start = eol + 2
            if start + size + 2 > end:
                break
            pieces.append(pending[start : start + size])
            offset = start + size + 2
        pending = pending[offset:]
        if pieces:
            yield b"".join(pieces)
    raise ConnectionError("the engine closed the connection before the last chunk of its answer")


def _chunk_size(line: bytes) -> int:
    """A chunk's size line (hexadecimal digits, then maybe ``;`` and extensions); -1 when
    it is not one."""
    try:
        return max(int(line.partition(b";")[0], 16), -1)
    except ValueError:
        return -1


def _bad_chunk(line: bytes) -> str:
    return f"the engine's chunked answer has a chunk size of {line[:40]!r}"

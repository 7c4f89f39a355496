"""Server-sent events: the projects table as the daemon rewrites it, an agent's output as it grows.

One watcher per dashboard process looks at the daemon's records a few times a
second and renders the table once per change for every open page, so fifty
viewers cost the daemon no more than one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from sidekick.web.data import Board

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.1
KEEPALIVE_SECONDS = 15.0
OUTPUT_POLL_SECONDS = 0.2
OUTPUT_CHUNK = 65536


def sse_event(name: str, data: str) -> bytes:
    """One event; every line of the data on its own ``data:`` line, as the format asks."""
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {name}\n{lines}\n".encode()


async def open_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    return response


class Hub:
    """Tells every open projects page when the daemon's record changed."""

    def __init__(self, board: Board, render: Callable[[], str]) -> None:
        self._board = board
        self._render = render
        self._viewers: set[asyncio.Queue[str]] = set()
        self._seen: tuple[int, ...] = ()
        self._task: asyncio.Task[None] | None = None
        # Set when the dashboard stops: open streams end instead of holding the shutdown up.
        self.closing = asyncio.Event()

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    def start(self) -> None:
        self._seen = self._board.fingerprint()
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        self.closing.set()
        for queue in self._viewers:
            queue.put_nowait("")
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                self._check()
            except Exception:
                logger.exception("cannot read the daemon's records for the live page")

    def _check(self) -> None:
        now = self._board.fingerprint()
        if now == self._seen or not self._viewers:
            self._seen = now
            return
        self._seen = now
        html = self._render()
        for queue in self._viewers:
            # Only the newest table matters: a slow viewer skips the ones in between.
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(html)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        response = await open_stream(request)
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._viewers.add(queue)
        try:
            await response.write(b": connected\n\n")
            while not self.closing.is_set():
                try:
                    html = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if html:
                    await response.write(sse_event("projects", html))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._viewers.discard(queue)
        return response


async def follow_output(
    request: web.Request,
    log: Path,
    tail: str,
    still_running: Callable[[], bool],
    closing: asyncio.Event,
) -> web.StreamResponse:
    """The tail first, then whatever the agent appends, until its run closes."""
    response = await open_stream(request)
    try:
        await response.write(sse_event("tail", json.dumps(tail)))
        offset = _size(log)
        while still_running() and not closing.is_set():
            await asyncio.sleep(OUTPUT_POLL_SECONDS)
            offset = await _send_new(response, log, offset)
        await _send_new(response, log, offset)
        await response.write(sse_event("end", "{}"))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response


async def _send_new(response: web.StreamResponse, log: Path, offset: int) -> int:
    size = _size(log)
    if size < offset:
        offset = 0  # truncated or replaced: start again from its beginning
    while size > offset:
        with log.open("rb") as handle:
            handle.seek(offset)
            chunk = handle.read(min(OUTPUT_CHUNK, size - offset))
        # Cut at the last whole UTF-8 character so no letter is split between two events.
        whole = whole_characters(chunk) if offset + len(chunk) < size else chunk
        whole = whole or chunk
        offset += len(whole)
        await response.write(sse_event("append", json.dumps(whole.decode("utf-8", "replace"))))
    return offset


def whole_characters(chunk: bytes) -> bytes:
    """The chunk without a last character whose bytes are not all there yet."""
    for back in range(1, min(4, len(chunk)) + 1):
        byte = chunk[-back]
        if byte < 0x80:
            return chunk
        if byte >= 0xC0:  # the first byte of the last character
            needed = 4 if byte >= 0xF0 else 3 if byte >= 0xE0 else 2
            return chunk if back >= needed else chunk[:-back]
    return chunk


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0

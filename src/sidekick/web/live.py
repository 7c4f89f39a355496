"""Server-sent events: the projects table as the daemon rewrites it, an agent's output as it grows.

One watcher per dashboard process looks at the daemon's records ten times a
second and renders what changed once for every open page, so fifty viewers
cost the daemon no more than one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from sidekick.web.data import Board

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.1
KEEPALIVE_SECONDS = 15.0
OUTPUT_POLL_SECONDS = 0.2
OUTPUT_CHUNK = 65536
# Updates a viewer may have waiting before it gets the whole table instead.
MAX_BACKLOG = 4


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


class Fragments(Protocol):
    """Renders the parts of the projects page that change."""

    def row(self, project: dict[str, Any]) -> str: ...

    def meta(self, data: dict[str, Any]) -> str: ...

    def extras(self, data: dict[str, Any]) -> str: ...


class Hub:
    """Tells every open projects page what changed since the daemon's last report.

    An update carries only the rows that changed (and the order when it changed),
    so a save that touches one row of a thousand sends one row to each viewer. A
    viewer that falls behind, or has just connected, gets the whole table instead.
    """

    def __init__(self, board: Board, fragments: Fragments) -> None:
        self._board = board
        self._fragments = fragments
        self._viewers: set[asyncio.Queue[str]] = set()
        self._seen: tuple[int, ...] | None = None
        self._rows: dict[str, dict[str, Any]] = {}
        self._html: dict[str, str] = {}
        self._order: list[str] = []
        self._meta = self._extras = ""
        self._task: asyncio.Task[None] | None = None
        # Set when the dashboard stops: open streams end instead of holding the shutdown up.
        self.closing = asyncio.Event()

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    def start(self) -> None:
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
            try:
                self._check()
            except Exception:
                logger.exception("cannot read the daemon's records for the live page")
            await asyncio.sleep(POLL_SECONDS)

    def _check(self) -> None:
        now = self._board.fingerprint()
        if now == self._seen:
            return
        self._seen = now
        payload = json.dumps(self._advance())
        full = ""
        for queue in self._viewers:
            if queue.qsize() >= MAX_BACKLOG:
                full = full or json.dumps(self._snapshot())
                _drain(queue)
                queue.put_nowait(full)
            else:
                queue.put_nowait(payload)

    def _advance(self) -> dict[str, Any]:
        """The update from the last report to this one; the baseline moves on."""
        data = self._board.projects()
        rows = {p["project"]: p for p in data["projects"]}
        changed = {
            name: self._fragments.row(row)
            for name, row in rows.items()
            if self._rows.get(name) != row
        }
        order = list(rows)
        moved = order != self._order
        self._html = {name: changed.get(name) or self._html[name] for name in order}
        self._rows, self._order = rows, order
        self._meta, self._extras = self._fragments.meta(data), self._fragments.extras(data)
        return {
            "meta": self._meta,
            "extras": self._extras,
            "rows": changed,
            "order": order if moved else None,
        }

    def current(self) -> tuple[str, str, str] | None:
        """(meta, rows, extras) as last rendered, while still the daemon's latest report."""
        if self._seen is None or self._board.fingerprint() != self._seen:
            return None
        return self._meta, "\n".join(self._html.values()), self._extras

    def _snapshot(self) -> dict[str, Any]:
        return {
            "meta": self._meta,
            "extras": self._extras,
            "rows": self._html,
            "order": self._order,
        }

    async def serve(self, request: web.Request) -> web.StreamResponse:
        response = await open_stream(request)
        queue: asyncio.Queue[str] = asyncio.Queue()
        queue.put_nowait(json.dumps(self._snapshot()))
        self._viewers.add(queue)
        try:
            await response.write(b": connected\n\n")
            while not self.closing.is_set():
                try:
                    payload = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if payload:
                    await response.write(sse_event("projects", payload))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._viewers.discard(queue)
        return response


def _drain(queue: asyncio.Queue[str]) -> None:
    while not queue.empty():
        queue.get_nowait()


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

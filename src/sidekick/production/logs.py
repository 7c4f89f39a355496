"""``sidekick prod logs``: services merged in time order, streamed with bounded memory.

Each container's log streams from the engine with its timestamps; a merge keeps
one pending line per container, so a log of any size costs the same memory.
``--grep`` filters here, line by line, as the lines pass. With ``--follow`` the
lines are written as they arrive from each container (through a bounded queue).
One container shown plainly (no grep, times or JSON), the commonest look, needs
none of that: its frames go to the output a block at a time, no object per line.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import BinaryIO, NamedTuple

from sidekick.containers.records import FRAME_HEADER, ContainerInfo
from sidekick.containers.scope import LogRecords, ScopedEngine, service_of
from sidekick.production.errors import ProductionError

logger = logging.getLogger(__name__)

FOLLOW_QUEUE = 1000
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class LogQuery(NamedTuple):
    """What ``prod logs`` asks for. (A tuple: a look defines no dataclass; see
    sidekick.production.view.)"""

    services: tuple[str, ...] = ()
    tail: int | None = None
    since: float | None = None
    until: float | None = None
    follow: bool = False
    grep: re.Pattern[bytes] | None = None
    timestamps: bool = False


class LogLine(NamedTuple):
    """One line; a tuple, as one is made for every line of a log of any size."""

    time: str
    source: str
    stream: str
    text: bytes


def moment(text: str, now: datetime) -> float:
    """``--since``/``--until``: 10m, 2h, 30s, 1d ago; an ISO time; or Unix seconds.
    Raises ValueError when the text is none of these."""
    relative = _RELATIVE.match(text.strip())
    if relative:
        amount = float(relative.group(1)) * _UNITS[relative.group(2)]
        return (now - timedelta(seconds=amount)).timestamp()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r} (try 10m, 2h or 2026-01-31T12:00)") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def sources(rows: list[ContainerInfo]) -> dict[str, str]:
    """The prefix of each container: its service, or its name when a service has several."""
    services = [service_of(r) for r in rows]
    return {
        r.name: s if services.count(s) == 1 else r.name for r, s in zip(rows, services, strict=True)
    }


def copy_logs(
    scoped: ScopedEngine, rows: list[ContainerInfo], query: LogQuery, writer: LogWriter
) -> None:
    """The containers' lines to the writer: merged, filtered, or, for one container shown
    plainly, its frames as they come."""
    if len(rows) > 1 or query.grep is not None or writer.timestamps or writer.as_json:
        cut: list[str] = []

        def report(source: str, problem: str) -> None:
            writer.note(source, problem)
            cut.append(source)

        for line in stream_logs(scoped, rows, query, report):
            writer.write(line)
        if cut:
            raise ProductionError(scoped.project, f"the log of {', '.join(cut)} was cut short")
        return
    (row,) = rows
    records = scoped.log_records(
        row,
        tail=query.tail,
        since=query.since,
        until=query.until,
        follow=query.follow,
        timestamps=False,
    )
    try:
        writer.write_frames(sources(rows)[row.name], records.blocks())
    finally:
        records.close()


def stream_logs(
    scoped: ScopedEngine,
    rows: list[ContainerInfo],
    query: LogQuery,
    on_cut: Callable[[str, str], None] = lambda source, problem: None,
) -> Iterator[LogLine]:
    """The containers' lines, merged by time (or as they come, when following). A merged
    log that fails raises the engine's error; a followed one keeps the other containers'
    lines coming and calls ``on_cut(source, problem)``, in this thread, for the failed one."""
    prefixes = sources(rows)
    opened = [
        (
            prefixes[r.name],
            scoped.log_records(
                r, tail=query.tail, since=query.since, until=query.until, follow=query.follow
            ),
        )
        for r in rows
    ]
    try:
        lines = _arrival(opened, on_cut) if query.follow else _merged(opened)
        grep = query.grep
        if grep is None:
            yield from lines
        else:
            yield from (line for line in lines if grep.search(line.text) is not None)
    finally:
        for _, records in opened:
            records.close()


def _lines(source: str, records: LogRecords) -> Iterator[LogLine]:
    for stamp, stream, text in records:
        yield LogLine(stamp, source, stream, text)


def _merged(opened: list[tuple[str, LogRecords]]) -> Iterator[LogLine]:
    if len(opened) == 1:
        return _lines(*opened[0])
    import heapq  # as queue below: only where several containers' lines meet

    # The engine's timestamps have a fixed width (nanoseconds, UTC), so text order is time order;
    # a LogLine is a tuple that starts with its time, so lines compare in time order.
    return heapq.merge(*(_lines(s, r) for s, r in opened))


class _Ended(NamedTuple):
    """A followed container's stream is over: it stopped (no problem) or was cut."""

    source: str
    problem: str


def _arrival(
    opened: list[tuple[str, LogRecords]], on_cut: Callable[[str, str], None]
) -> Iterator[LogLine]:
    import queue

    lines: queue.Queue[LogLine | _Ended] = queue.Queue(FOLLOW_QUEUE)
    for source, records in opened:
        threading.Thread(target=_pump, args=(source, records, lines.put), daemon=True).start()
    running = len(opened)
    while running:
        line = lines.get()
        if isinstance(line, _Ended):
            running -= 1
            if line.problem:
                on_cut(line.source, line.problem)
        else:
            yield line


def _pump(source: str, records: LogRecords, put: Callable[[LogLine | _Ended], None]) -> None:
    problem = ""
    try:
        for line in _lines(source, records):
            put(line)
    except Exception as exc:  # the engine's error, or the stream closed when the reader left
        logger.debug("log stream of %s ended: %s", source, exc)
        problem = str(exc)
    finally:
        put(_Ended(source, problem))


class LogWriter:
    """Writes lines as ``docker compose logs`` does: ``service  | text``, stderr apart."""

    def __init__(self, out: BinaryIO, err: BinaryIO, *, timestamps: bool, as_json: bool) -> None:
        self.out, self.err = out, err
        self.timestamps = timestamps
        self.as_json = as_json
        self.width = 0
        self._prefixes: dict[str, bytes] = {}

    def write(self, line: LogLine) -> None:
        time, source, stream, text = line
        if not text.endswith(b"\n"):
            text += b"\n"
        if self.as_json:
            self.out.write(_json_line(line, text))
            return
        prefix = self._prefixes.get(source) or self._prefix(source)
        target = self.err if stream == "stderr" else self.out
        if self.timestamps:
            target.write(b"%s%s %s" % (prefix, time.encode(), text))
        else:
            target.write(prefix + text)

    def write_frames(self, source: str, blocks: Iterable[bytes]) -> None:
        """A multiplexed stream without timestamps (8-byte header: stream, size), each
        block's lines written at once behind the source's prefix."""
        prefix = self._prefixes.get(source) or self._prefix(source)
        header, unpack = FRAME_HEADER.size, FRAME_HEADER.unpack_from
        pending = b""
        for data in blocks:
            pending = pending + data if pending else data
            lines: tuple[list[bytes], list[bytes]] = ([], [])
            offset, end = 0, len(pending)
            while offset + header <= end:
                kind, size = unpack(pending, offset)
                start, stop = offset + header, offset + header + size
                if stop > end:
                    break
                text = pending[start:stop]
                lines[kind == 2].extend((prefix, text if text.endswith(b"\n") else text + b"\n"))
                offset = stop
            pending = pending[offset:]
            self.out.write(b"".join(lines[0]))
            self.err.write(b"".join(lines[1]))

    def note(self, source: str, problem: str) -> None:
        """Say on stderr, between the lines, that a source's log was cut and why."""
        self.err.write(f"sidekick: {source}: log cut short: {problem}\n".encode())

    def _prefix(self, source: str) -> bytes:
        """``service  | ``, padded to the widest source seen so far (kept per source)."""
        if len(source) > self.width:
            self.width = len(source)
            self._prefixes.clear()
        prefix = self._prefixes[source] = f"{source.ljust(self.width)}  | ".encode()
        return prefix


def _json_line(line: LogLine, text: bytes) -> bytes:
    record = {"time": line.time, "service": line.source, "stream": line.stream}
    record["line"] = text.decode("utf-8", "replace").rstrip("\n")
    return json.dumps(record, ensure_ascii=False).encode() + b"\n"

"""What the engine streams back besides container rows: a container's output, as log chunks
tagged with their stream, and the state-change events of managed containers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sidekick.containers.records import FRAME_HEADER, STREAMS, _Labelled


@dataclass(frozen=True)
class LogChunk:
    stream: str
    data: bytes


@dataclass(frozen=True)
class Logs:
    """A container's output in the engine's order, each chunk tagged with its stream."""

    chunks: tuple[LogChunk, ...] = ()

    @property
    def stdout(self) -> bytes:
        return self._join("stdout")

    @property
    def stderr(self) -> bytes:
        return self._join("stderr")

    @property
    def combined(self) -> bytes:
        return b"".join(chunk.data for chunk in self.chunks)

    def _join(self, stream: str) -> bytes:
        return b"".join(chunk.data for chunk in self.chunks if chunk.stream == stream)


def split_frames(buffer: bytes) -> tuple[LogChunk, ...]:
    """Chunks of a whole multiplexed log body (8-byte header: stream, size)."""
    chunks = []
    offset = 0
    while offset + FRAME_HEADER.size <= len(buffer):
        kind, size = FRAME_HEADER.unpack_from(buffer, offset)
        start = offset + FRAME_HEADER.size
        chunks.append(LogChunk(STREAMS.get(kind, "stdout"), buffer[start : start + size]))
        offset = start + size
    return tuple(chunks)


def read_frames(read: Callable[[int], bytes]) -> Iterator[LogChunk]:
    """Chunks of a multiplexed log stream as they arrive, until the stream ends."""
    while True:
        header = _read_exactly(read, FRAME_HEADER.size)
        if len(header) < FRAME_HEADER.size:
            return
        kind, size = FRAME_HEADER.unpack(header)
        data = _read_exactly(read, size)
        if data:
            yield LogChunk(STREAMS.get(kind, "stdout"), data)
        if len(data) < size:
            return


def _read_exactly(read: Callable[[int], bytes], size: int) -> bytes:
    parts = []
    wanted = size
    while wanted > 0:
        part = read(wanted)
        if not part:
            break
        parts.append(part)
        wanted -= len(part)
    return b"".join(parts)


@dataclass(frozen=True)
class ContainerEvent(_Labelled):
    """A state change of a managed container: create, start, die, stop, destroy, ..."""

    action: str
    id: str
    name: str
    labels: Mapping[str, str]
    time: datetime
    exit_code: int | None = None

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> ContainerEvent:
        actor = raw.get("Actor") or {}
        attributes = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
        code = attributes.get("exitCode")
        nanos = raw.get("timeNano")
        seconds = nanos / 1e9 if isinstance(nanos, int) else float(raw.get("time", 0))
        return cls(
            # exec events read "exec_start: sh -c ..."; the verb is what matters.
            action=str(raw.get("Action") or raw.get("status") or "").split(":", 1)[0],
            id=str(actor.get("ID") or raw.get("id") or ""),
            name=attributes.get("name", ""),
            labels=attributes,
            time=datetime.fromtimestamp(seconds, UTC),
            exit_code=int(code) if code and code.lstrip("-").isdigit() else None,
        )

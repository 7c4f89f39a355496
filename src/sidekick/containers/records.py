"""Value objects read back from the engine: containers, log chunks, state-change events."""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sidekick.containers.spec import LABEL_MANAGED, LABEL_PROJECT, LABEL_RUN

ENDED_STATES = frozenset({"exited", "dead"})
ALIVE_STATES = frozenset({"running", "restarting", "paused"})
STREAMS = {0: "stdin", 1: "stdout", 2: "stderr"}
FRAME_HEADER = struct.Struct(">BxxxL")

# The list call has no exit code field; its Status text carries it ("Exited (3) 2 minutes ago").
_EXITED = re.compile(r"^Exited \((-?\d+)\)")


class _Labelled:
    """What sidekick's labels say about a container or one of its events."""

    labels: Mapping[str, str]

    @property
    def project(self) -> str:
        return self.labels.get(LABEL_PROJECT, "")

    @property
    def run_id(self) -> str:
        return self.labels.get(LABEL_RUN, "")


@dataclass(frozen=True)
class ContainerInfo(_Labelled):
    """One container as the engine reported it (a list row or a full inspect)."""

    id: str
    name: str
    state: str
    labels: Mapping[str, str] = field(default_factory=dict)
    image: str = ""
    exit_code: int | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def managed(self) -> bool:
        return self.labels.get(LABEL_MANAGED) == "true"

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES

    @property
    def alive(self) -> bool:
        return self.state in ALIVE_STATES

    @classmethod
    def from_list(cls, raw: Mapping[str, Any]) -> ContainerInfo:
        names = raw.get("Names") or [""]
        state = str(raw.get("State", ""))
        exited = _EXITED.match(str(raw.get("Status", "")))
        return cls(
            id=str(raw["Id"]),
            name=str(names[0]).lstrip("/"),
            state=state,
            labels=dict(raw.get("Labels") or {}),
            image=str(raw.get("Image", "")),
            exit_code=int(exited.group(1)) if exited and state in ENDED_STATES else None,
            created_at=_from_epoch(raw.get("Created")),
            raw=raw,
        )

    @classmethod
    def from_inspect(cls, raw: Mapping[str, Any]) -> ContainerInfo:
        state = raw.get("State") or {}
        config = raw.get("Config") or {}
        status = str(state.get("Status", ""))
        return cls(
            id=str(raw["Id"]),
            name=str(raw.get("Name", "")).lstrip("/"),
            state=status,
            labels=dict(config.get("Labels") or {}),
            image=str(config.get("Image", "")),
            exit_code=int(state.get("ExitCode", 0)) if status in ENDED_STATES else None,
            created_at=parse_time(raw.get("Created")),
            started_at=parse_time(state.get("StartedAt")),
            finished_at=parse_time(state.get("FinishedAt")),
            error=str(state.get("Error") or ""),
            raw=raw,
        )


def parse_time(text: object) -> datetime | None:
    """An engine timestamp; the engine's zero time (year 1) means never."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return None if moment.year <= 1 else moment


def _from_epoch(value: object) -> datetime | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return datetime.fromtimestamp(value, UTC)


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

"""Read-only looks inside containers: processes (top), one-shot stats, recent events.

Every call passes through :meth:`ContainerEngine.call`, the engine's one
choke point, so errors arrive as :class:`ContainerError` with a code. Nothing
here execs into a container: the top API has the engine read the processes
from the host side, so it works on images without a shell.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from docker.api.client import APIClient
from docker.types import CancellableStream

from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import ContainerError
from sidekick.containers.records import parse_time

logger = logging.getLogger(__name__)

# What a person reading about a container's health wants from the event log.
INSIGHT_ACTIONS = ("die", "oom", "health_status", "restart", "start", "kill")
MAX_STATS_WORKERS = 32


@dataclass(frozen=True)
class TopTable:
    """The engine's ``top`` answer: column titles and one row per process."""

    titles: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def column(self, row: Sequence[str], title: str) -> str:
        try:
            return row[self.titles.index(title)]
        except (ValueError, IndexError):
            return ""


@dataclass(frozen=True)
class EngineEvent:
    """One engine event about a container, with the detail after the verb kept."""

    action: str
    detail: str
    container: str
    time: datetime
    exit_code: int | None = None

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> EngineEvent:
        actor = raw.get("Actor") or {}
        attributes = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
        verb, _, detail = str(raw.get("Action") or raw.get("status") or "").partition(":")
        nanos = raw.get("timeNano")
        seconds = nanos / 1e9 if isinstance(nanos, int) else float(raw.get("time", 0))
        code = attributes.get("exitCode", "")
        return cls(
            action=verb.strip(),
            detail=detail.strip(),
            container=attributes.get("name", ""),
            time=datetime.fromtimestamp(seconds, UTC),
            exit_code=int(code) if code.lstrip("-").isdigit() else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "detail": self.detail,
            "container": self.container,
            "time": self.time.isoformat(timespec="seconds"),
            "exit_code": self.exit_code,
        }


def top(engine: ContainerEngine, name: str) -> TopTable:
    """The processes of a running container, read by the engine (no exec)."""
    raw = engine.call("top", "", lambda api: api.top(name, ps_args="-eo pid,ppid,user,args"))
    titles = tuple(str(t) for t in raw.get("Titles") or ())
    rows = tuple(tuple(str(cell) for cell in row) for row in raw.get("Processes") or ())
    return TopTable(titles, rows)


def one_shot_stats(engine: ContainerEngine, name: str) -> dict[str, Any]:
    """One stats sample, without the engine's second sample a second later."""

    def fetch(api: APIClient) -> dict[str, Any]:
        return dict(api.stats(name, stream=False, one_shot=True))

    return engine.call("stats", "", fetch, retry=True)


def stats_of_many(
    engine: ContainerEngine, names: Sequence[str], workers: int = MAX_STATS_WORKERS
) -> dict[str, dict[str, Any] | ContainerError]:
    """One-shot stats of every container at once; a container's failure is its own entry."""
    if not names:
        return {}

    def fetch(name: str) -> dict[str, Any] | ContainerError:
        try:
            return one_shot_stats(engine, name)
        except ContainerError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(names)))) as pool:
        return dict(zip(names, pool.map(fetch, names), strict=True))


def recent_events(
    engine: ContainerEngine, names: Sequence[str], since: datetime, until: datetime
) -> list[EngineEvent]:
    """The engine's events about these containers between two moments (the stream ends)."""
    if not names:
        return []
    filters = {"type": ["container"], "container": list(names), "event": list(INSIGHT_ACTIONS)}

    def read(api: APIClient) -> list[EngineEvent]:
        # Floats: the SDK turns datetimes into whole seconds, losing the last second's events;
        # it sends a float as it is (the stubs take only datetime | int).
        stream: CancellableStream[dict[str, Any]] = api.events(  # type: ignore[call-overload]
            since=since.timestamp(), until=until.timestamp(), filters=filters, decode=True
        )
        try:
            return [EngineEvent.from_raw(raw) for raw in stream]
        finally:
            stream.close()

    return engine.call("events", "", read, retry=True)


def inspect_raw(engine: ContainerEngine, name: str) -> dict[str, Any]:
    """The engine's whole inspect document for any container (read-only, so not only ours)."""
    return dict(engine.call("inspect", "", lambda api: api.inspect_container(name), retry=True))


def image_created(engine: ContainerEngine, image: str) -> datetime | None:
    """When an image was built, or None if the engine no longer has it."""
    try:
        raw = engine.call("inspect", "", lambda api: api.inspect_image(image), retry=True)
    except ContainerError:
        return None
    return parse_time(raw.get("Created"))


def log_tail(engine: ContainerEngine, name: str, lines: int) -> tuple[str, ...]:
    """The last lines a container printed (stdout and stderr in order), as text."""
    text = engine.logs(name, tail=lines).combined.decode(errors="replace")
    return tuple(line for line in text.splitlines() if line.strip())[-lines:]


def host_memory(engine: ContainerEngine) -> int | None:
    """The engine host's memory: a container "limit" that equals it is no limit at all."""
    raw = engine.call("info", "", lambda api: api.info(), retry=True)
    total = raw.get("MemTotal")
    return int(total) if isinstance(total, int) else None


def container_rows(engine: ContainerEngine, label: str | None = None) -> list[dict[str, Any]]:
    """Every container (all states) as the engine lists it, optionally only one label's."""
    filters = {"label": [label]} if label else None
    rows = engine.call(
        "list", "", lambda api: api.containers(all=True, filters=filters), retry=True
    )
    return [dict(row) for row in rows]


def row_name(row: Mapping[str, Any]) -> str:
    return str((row.get("Names") or [""])[0]).lstrip("/")

"""Collect the insight report for many containers: engine calls concurrent, one events read."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sidekick.containers import observe
from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import ContainerError
from sidekick.containers.observe import EngineEvent
from sidekick.insight.health import Health, events_gap, read_health
from sidekick.insight.load import Load, read_load
from sidekick.insight.problems import (
    Facts,
    Problem,
    ProblemKind,
    Thresholds,
    find_problems,
    worst_first,
)
from sidekick.insight.processes import (
    PROC_ROOT,
    Ports,
    Process,
    Service,
    listening_ports,
    processes_from_top,
    read_ports,
    recognise_services,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
WORKERS = 32
LOG_TAIL = 20
EVENTS_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Release:
    """A project's last release, for the stale-image check."""

    name: str
    time: datetime


@dataclass(frozen=True)
class ContainerInsight:
    name: str
    id: str = ""
    image: str = ""
    project: str = ""
    health: Health | None = None
    processes: tuple[Process, ...] = ()
    services: tuple[Service, ...] = ()
    ports: Ports | None = None
    load: Load | None = None
    problems: tuple[Problem, ...] = ()
    log_tail: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    investigation: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.id[:12],
            "image": self.image,
            "project": self.project,
            "health": self.health.to_dict() if self.health else None,
            "processes": [p.to_dict() for p in self.processes],
            "services": [s.to_dict() for s in self.services],
            "ports": self.ports.to_dict() if self.ports else None,
            "load": self.load.to_dict() if self.load else None,
            "problems": [p.to_dict() for p in self.problems],
            "notes": list(self.notes),
            "investigation": self.investigation,
        }


@dataclass
class InsightCollector:
    """Reads the engine for a set of containers; keeps the last load for CPU deltas."""

    engine: ContainerEngine
    thresholds: Thresholds = field(default_factory=Thresholds)
    releases: Mapping[str, Release] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _previous: dict[str, Load] = field(default_factory=dict)
    _host_memory: int | None = None

    def collect(self, names: Sequence[str]) -> list[ContainerInsight]:
        now = self.clock()
        with ThreadPoolExecutor(max_workers=1) as background:
            # A one-shot sample waits for the engine's next collection tick (up to a
            # second): asked first, so everything else is read in the meantime.
            pending = background.submit(observe.stats_of_many, self.engine, list(names), WORKERS)
            if self._host_memory is None:
                self._host_memory = observe.host_memory(self.engine)
            inspected = _parallel(lambda n: observe.inspect_raw(self.engine, n), names)
            raws = {n: r for n, r in inspected.items() if not isinstance(r, ContainerError)}
            running = [n for n, r in raws.items() if _running(r)]
            insides = _parallel(lambda n: _look_inside(self.engine, n), running)
            since = now - max(EVENTS_WINDOW, self.thresholds.restart_window)
            events = _events_by_name(self.engine, list(raws), since, now)
            stats = pending.result()
        reports = []
        for name in names:
            raw = inspected[name]
            if isinstance(raw, ContainerError):
                reports.append(ContainerInsight(name, notes=(str(raw),)))
                continue
            sample = stats.get(name) if name in insides else None
            mine = (events or {}).get(_name(raw), [])
            parts = _Parts(
                raw, insides.get(name), sample, mine, since if events is not None else None
            )
            reports.append(self._one(parts, now))
        return reports

    def _one(self, parts: _Parts, now: datetime) -> ContainerInsight:
        raw = parts.raw
        name = _name(raw)
        health = read_health(raw, parts.events)
        notes: list[str] = []
        inside = _inside(parts.inside, notes, health.state)
        processes = inside.processes
        ports = read_ports(raw, inside.listening, inside.note)
        if inside.note and processes:
            notes.append(inside.note)
        load = self._load(name, parts.stats, health, notes)
        tail = self._tail(name, health)
        release = self.releases.get(_project(raw)) or self.releases.get(name)
        facts = Facts(
            health=health,
            load=load,
            image_created=observe.image_created(self.engine, str(raw.get("Image", "")))
            if release
            else None,
            last_release=release.time if release else None,
            release_name=release.name if release else "",
            log_tail=tail,
            events_since=parts.events_since,
        )
        problems = worst_first(find_problems(facts, now, self.thresholds))
        gap = events_gap(health, parts.events_since)
        if gap and not any(p.kind is ProblemKind.RESTART_LOOP for p in problems):
            notes.append(gap)  # a restart loop carries it in its evidence
        return ContainerInsight(
            name=name,
            id=str(raw.get("Id", "")),
            image=str((raw.get("Config") or {}).get("Image", "")),
            project=_project(raw),
            health=health,
            processes=processes,
            services=recognise_services(processes, ports),
            ports=ports,
            load=load,
            problems=tuple(problems),
            log_tail=tail,
            notes=tuple(notes),
        )

    def _load(
        self,
        name: str,
        stats: dict[str, Any] | ContainerError | None,
        health: Health,
        notes: list[str],
    ) -> Load | None:
        if isinstance(stats, ContainerError):
            notes.append(f"stats unavailable: {stats}")
            return None
        if stats is None:
            return None
        load = read_load(stats, health.started_at, self._host_memory, self._previous.get(name))
        self._previous[name] = load
        return load

    def _tail(self, name: str, health: Health) -> tuple[str, ...]:
        troubled = health.state != "running" or health.restart_count or health.health == "unhealthy"
        if not troubled:
            return ()
        try:
            return observe.log_tail(self.engine, name, LOG_TAIL)
        except ContainerError as exc:
            logger.info("no logs for %s: %s", name, exc)
            return ()


@dataclass(frozen=True)
class _Inside:
    """What runs inside: processes from top, listening ports from /proc (or why not)."""

    processes: tuple[Process, ...] = ()
    listening: tuple[int, ...] | None = None
    note: str = ""


@dataclass(frozen=True)
class _Parts:
    raw: dict[str, Any]
    inside: _Inside | ContainerError | None
    stats: dict[str, Any] | ContainerError | None
    events: list[EngineEvent]
    events_since: datetime | None


def _look_inside(engine: ContainerEngine, name: str) -> _Inside:
    processes = processes_from_top(observe.top(engine, name))
    listening, note = listening_ports(processes, PROC_ROOT)
    return _Inside(processes, listening, note)


def _inside(inside: _Inside | ContainerError | None, notes: list[str], state: str) -> _Inside:
    if isinstance(inside, ContainerError):
        notes.append(f"processes unavailable: {inside}")
        return _Inside()
    if inside is None:
        notes.append(f"no processes listed: the container is {state}")
        return _Inside()
    return inside


def _parallel(fn: Callable[[str], T], names: Sequence[str]) -> dict[str, T | ContainerError]:
    def guarded(name: str) -> T | ContainerError:
        try:
            return fn(name)
        except ContainerError as exc:
            return exc

    if not names:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(WORKERS, len(names)))) as pool:
        return dict(zip(names, pool.map(guarded, names), strict=True))


def _events_by_name(
    engine: ContainerEngine, names: list[str], since: datetime, until: datetime
) -> dict[str, list[EngineEvent]] | None:
    try:
        events = observe.recent_events(engine, names, since, until)
    except ContainerError as exc:
        logger.warning("engine events unavailable: %s", exc)
        return None
    grouped: dict[str, list[EngineEvent]] = {}
    for event in events:
        grouped.setdefault(event.container, []).append(event)
    return grouped


def _running(raw: Mapping[str, Any]) -> bool:
    # A restarting container reads Running too, but has no processes to list yet.
    return (raw.get("State") or {}).get("Status") == "running"


def _name(raw: Mapping[str, Any]) -> str:
    return str(raw.get("Name", "")).lstrip("/")


def _project(raw: Mapping[str, Any]) -> str:
    labels = (raw.get("Config") or {}).get("Labels") or {}
    return str(labels.get("sidekick.project", ""))

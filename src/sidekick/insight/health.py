"""How healthy a container is, from its inspect document and the engine's recent events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sidekick.containers.observe import EngineEvent
from sidekick.containers.records import parse_time

PROBE_OUTPUT_LIMIT = 300
# The engine keeps only its latest events in memory (moby's events.eventsLimit), for all
# containers together: a busy engine drops a looping container's older deaths.
ENGINE_EVENTS_KEPT = 256


@dataclass(frozen=True)
class Probe:
    """One health-check run: when, its exit code and what it printed."""

    start: datetime | None
    exit_code: int
    output: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(timespec="seconds") if self.start else None,
            "exit_code": self.exit_code,
            "output": self.output,
        }


@dataclass(frozen=True)
class Health:
    state: str
    health: str | None
    failing_streak: int
    probes: tuple[Probe, ...]
    restart_count: int
    oom_killed: bool
    exit_code: int | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str = ""
    restart_policy: str = ""
    events: tuple[EngineEvent, ...] = field(default=())
    created_at: datetime | None = None

    @property
    def deaths(self) -> tuple[EngineEvent, ...]:
        return tuple(e for e in self.events if e.action == "die")

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "health": self.health,
            "failing_streak": self.failing_streak,
            "probes": [p.to_dict() for p in self.probes],
            "restart_count": self.restart_count,
            "oom_killed": self.oom_killed,
            "exit_code": self.exit_code,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "error": self.error,
            "restart_policy": self.restart_policy,
            "events": [e.to_dict() for e in self.events],
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def read_health(raw: Mapping[str, Any], events: Sequence[EngineEvent]) -> Health:
    state = raw.get("State") or {}
    probe_state = state.get("Health") or {}
    status = str(state.get("Status", ""))
    policy = ((raw.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name", "")
    return Health(
        state=status,
        health=str(probe_state["Status"]) if probe_state.get("Status") else None,
        failing_streak=int(probe_state.get("FailingStreak") or 0),
        probes=tuple(_probe(entry) for entry in probe_state.get("Log") or ()),
        restart_count=int(raw.get("RestartCount") or 0),
        oom_killed=bool(state.get("OOMKilled")),
        exit_code=_exit_code(state, status),
        started_at=parse_time(state.get("StartedAt")),
        finished_at=parse_time(state.get("FinishedAt")),
        error=str(state.get("Error") or ""),
        restart_policy=str(policy or ""),
        events=tuple(events),
        created_at=parse_time(raw.get("Created")),
    )


def events_gap(health: Health, events_since: datetime | None) -> str:
    """Why the engine's events show fewer deaths than RestartCount (each restart follows
    one death), or "" when they agree; ``events_since`` is None when none could be read."""
    seen, count = len(health.deaths), health.restart_count
    if seen >= count:
        return ""
    shown = f"the engine's events show {seen} of its {count} deaths"
    kept = f"the engine keeps only its latest {ENGINE_EVENTS_KEPT} events, of every container"
    if events_since is None:
        return f"the engine's events could not be read: {count} restarts counted from inspect"
    created = health.created_at
    if created is not None and created >= events_since:
        return f"{shown}: {kept}, so the older {count - seen} were dropped; counted from inspect"
    return (
        f"{shown}: the others are older than the events read (since {events_since:%H:%M:%S})"
        f" or were dropped ({kept}); counted from inspect"
    )


def _exit_code(state: Mapping[str, Any], status: str) -> int | None:
    # A restarting container's last run ended too; its code says how.
    if status in {"exited", "dead", "restarting"} or state.get("FinishedAt", "").startswith("2"):
        code = state.get("ExitCode")
        return int(code) if isinstance(code, int) else None
    return None


def _probe(entry: Mapping[str, Any]) -> Probe:
    output = " ".join(str(entry.get("Output") or "").split())
    return Probe(
        start=parse_time(entry.get("Start")),
        exit_code=int(entry.get("ExitCode") or 0),
        output=output[:PROBE_OUTPUT_LIMIT],
    )

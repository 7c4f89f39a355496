"""What is going wrong with a container, each problem with the evidence that shows it."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sidekick.insight.health import Health, events_gap
from sidekick.insight.load import Load
from sidekick.insight.settings import InsightConfig


class ProblemKind(enum.Enum):
    RESTART_LOOP = "restart loop"
    OOM_KILLED = "OOM-killed"
    UNHEALTHY = "unhealthy"
    MEMORY_NEAR_LIMIT = "memory near its limit"
    EXITED_NON_ZERO = "exited non-zero"
    STALE_IMAGE = "image older than the last release"


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    summary: str
    evidence: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "summary": self.summary, "evidence": list(self.evidence)}


@dataclass(frozen=True)
class Thresholds:
    restart_window: timedelta = timedelta(minutes=10)
    restarts: int = 3
    memory_percent: float = 90.0


def thresholds_of(settings: InsightConfig) -> Thresholds:
    """The thresholds the ``insight:`` section sets."""
    return Thresholds(
        timedelta(seconds=settings.restart_window), settings.restarts, settings.memory_percent
    )


@dataclass(frozen=True)
class Facts:
    """Everything the problem rules look at for one container."""

    health: Health
    load: Load | None
    image_created: datetime | None = None
    last_release: datetime | None = None
    release_name: str = ""
    log_tail: tuple[str, ...] = ()
    # Where the engine's events were read from: deaths before it cannot be among them.
    events_since: datetime | None = None


def find_problems(facts: Facts, now: datetime, limits: Thresholds | None = None) -> list[Problem]:
    limits = limits or Thresholds()
    rules = (
        _restart_loop(facts, now, limits),
        _oom_killed(facts),
        _unhealthy(facts),
        _memory_near_limit(facts, limits),
        _exited_non_zero(facts),
        _stale_image(facts),
    )
    return [problem for rule in rules for problem in rule]


def _restart_loop(facts: Facts, now: datetime, limits: Thresholds) -> Iterator[Problem]:
    health = facts.health
    since = now - limits.restart_window
    deaths = [e for e in health.deaths if e.time >= since]
    count = _restarts_in_window(health, len(deaths), since)
    looping = count >= limits.restarts or (
        health.state == "restarting" and health.restart_count >= limits.restarts
    )
    if not looping:
        return
    minutes = f"{limits.restart_window.total_seconds() / 60:g} min"
    evidence = [f"restart count {health.restart_count} (policy {health.restart_policy or 'no'})"]
    if count > len(deaths) and health.created_at is not None:
        age = (now - health.created_at).total_seconds()
        evidence.append(
            f"created at {health.created_at:%H:%M:%S} ({age:.0f} s ago):"
            f" all {count} restarts are within the last {minutes}"
        )
    evidence += [gap for gap in (events_gap(health, facts.events_since),) if gap]
    evidence += [
        f"died at {e.time:%H:%M:%S} with exit code {e.exit_code}"
        for e in deaths[-limits.restarts :]
    ]
    evidence += _log_evidence(facts)
    seen = f", {len(deaths)} of them in the engine's events" if count > len(deaths) else ""
    yield Problem(
        ProblemKind.RESTART_LOOP,
        f"{count} restarts in the last {minutes}{seen} (state {health.state})",
        tuple(evidence),
    )


def _restarts_in_window(health: Health, seen: int, since: datetime) -> int:
    """Deaths in the window: the events', or RestartCount when the container is younger
    than the window (every restart it counts is then inside) and the events lost some."""
    created = health.created_at
    if created is not None and created >= since:
        return max(seen, health.restart_count)
    return seen


def _oom_killed(facts: Facts) -> Iterator[Problem]:
    health = facts.health
    ooms = [e for e in health.events if e.action == "oom"]
    if not health.oom_killed and not ooms:
        return
    evidence = []
    if health.oom_killed:
        evidence.append(f"State.OOMKilled is true, exit code {health.exit_code}")
    evidence += [f"oom event at {e.time:%H:%M:%S}" for e in ooms[-3:]]
    if facts.load is not None and facts.load.memory_limit:
        evidence.append(f"memory limit {human_bytes(facts.load.memory_limit)}")
    yield Problem(
        ProblemKind.OOM_KILLED, "killed by the kernel for lack of memory", tuple(evidence)
    )


def _unhealthy(facts: Facts) -> Iterator[Problem]:
    health = facts.health
    if health.health != "unhealthy":
        return
    evidence = [f"failing streak {health.failing_streak}"]
    evidence += [
        f"probe at {p.start:%H:%M:%S} exit {p.exit_code}: {p.output or '(no output)'}"
        if p.start
        else f"probe exit {p.exit_code}: {p.output or '(no output)'}"
        for p in health.probes[-3:]
    ]
    yield Problem(ProblemKind.UNHEALTHY, "its health check fails", tuple(evidence))


def _memory_near_limit(facts: Facts, limits: Thresholds) -> Iterator[Problem]:
    load = facts.load
    percent = load.memory_percent if load is not None else None
    if load is None or percent is None or percent < limits.memory_percent:
        return
    evidence = (
        f"{human_bytes(load.memory_used)} used of {human_bytes(load.memory_limit or 0)}"
        f" ({percent:.1f} %, threshold {limits.memory_percent:g} %)",
    )
    yield Problem(
        ProblemKind.MEMORY_NEAR_LIMIT, f"memory at {percent:.0f} % of its limit", evidence
    )


def _exited_non_zero(facts: Facts) -> Iterator[Problem]:
    health = facts.health
    if health.state not in {"exited", "dead"} or not health.exit_code:
        return
    evidence = [f"exit code {health.exit_code}"]
    if health.finished_at:
        evidence.append(f"finished at {health.finished_at:%Y-%m-%d %H:%M:%S}")
    if health.error:
        evidence.append(f"engine error: {health.error}")
    evidence += _log_evidence(facts)
    yield Problem(
        ProblemKind.EXITED_NON_ZERO, f"exited with code {health.exit_code}", tuple(evidence)
    )


def _stale_image(facts: Facts) -> Iterator[Problem]:
    created, release = facts.image_created, facts.last_release
    if created is None or release is None or created >= release:
        return
    evidence = (
        f"image built {created:%Y-%m-%d %H:%M}",
        f"release {facts.release_name or '?'} made {release:%Y-%m-%d %H:%M}",
    )
    yield Problem(ProblemKind.STALE_IMAGE, "runs an image built before the last release", evidence)


def _log_evidence(facts: Facts) -> list[str]:
    return [f"log: {line}" for line in facts.log_tail[-3:]]


def human_bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}TiB"


def worst_first(problems: Sequence[Problem]) -> list[Problem]:
    order = list(ProblemKind)
    return sorted(problems, key=lambda p: order.index(p.kind))

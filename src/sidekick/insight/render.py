"""The insight report as a terminal table with details, as JSON, and refreshed in place."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TextIO

from sidekick.insight.problems import human_bytes
from sidekick.insight.report import ContainerInsight

RED = "\x1b[31m"
BOLD = "\x1b[1m"
RESET = "\x1b[0m"
HOME_AND_CLEAR = "\x1b[H\x1b[2J"
COLUMNS = (
    ("NAME", 24),
    ("STATE", 11),
    ("HEALTH", 9),
    ("CPU %", 7),
    ("MEM USAGE / LIMIT", 21),
    ("MEM %", 6),
    ("NET I/O", 19),
    ("BLOCK I/O", 19),
    ("PIDS", 5),
    ("RESTARTS", 8),
    ("PROBLEMS", 0),
)


def to_json(reports: Sequence[ContainerInsight], now: datetime) -> dict[str, Any]:
    return {
        "generated_at": now.isoformat(timespec="seconds"),
        "containers": [r.to_dict() for r in reports],
    }


def render_table(reports: Sequence[ContainerInsight], *, color: bool = False) -> str:
    header = _cells([title for title, _ in COLUMNS])
    lines = [f"{BOLD}{header}{RESET}" if color else header]
    for report in reports:
        line = _cells(_row(report))
        lines.append(f"{RED}{line}{RESET}" if color and report.problems else line)
    return "\n".join(lines)


def render_report(reports: Sequence[ContainerInsight], *, color: bool = False) -> str:
    parts = [render_table(reports, color=color)]
    parts += [_details(report) for report in reports]
    return "\n\n".join(parts)


def _cells(values: Sequence[str]) -> str:
    return " ".join(
        value.ljust(width) if width else value
        for value, (_, width) in zip(values, COLUMNS, strict=True)
    ).rstrip()


def _row(report: ContainerInsight) -> list[str]:
    health, load = report.health, report.load
    memory = percent = cpu = net = block = pids = "-"
    if load is not None:
        limit = human_bytes(load.memory_limit) if load.memory_limit else "no limit"
        memory = f"{human_bytes(load.memory_used)} / {limit}"
        percent = f"{load.memory_percent:.1f}" if load.memory_percent is not None else "-"
        cpu = f"{load.cpu_percent:.1f}" if load.cpu_percent is not None else "-"
        net = f"{human_bytes(load.net_rx)} / {human_bytes(load.net_tx)}"
        block = f"{human_bytes(load.block_read)} / {human_bytes(load.block_write)}"
        pids = str(load.pids)
    return [
        report.name[:24],
        health.state if health else "missing",
        (health.health or "-") if health else "-",
        cpu,
        memory,
        percent,
        net,
        block,
        pids,
        str(health.restart_count) if health else "-",
        ", ".join(p.kind.value for p in report.problems) or "-",
    ]


def _details(report: ContainerInsight) -> str:
    lines = [f"== {report.name}" + (f" (project {report.project})" if report.project else "")]
    if report.image:
        lines.append(f"image: {report.image}")
    lines += _service_lines(report)
    lines += _health_lines(report)
    for problem in report.problems:
        lines.append(f"PROBLEM {problem.kind.value}: {problem.summary}")
        lines += [f"    - {item}" for item in problem.evidence]
    lines += [f"note: {note}" for note in report.notes]
    if report.investigation:
        lines.append(f"last investigation: {report.investigation}")
    return "\n".join(lines)


def _service_lines(report: ContainerInsight) -> list[str]:
    lines = []
    if report.services:
        named = ", ".join(f"{s.name} ({s.kind.value})" for s in report.services)
        lines.append(f"services: {named}")
    ports = report.ports
    if ports is not None:
        listening = "unknown" if ports.listening is None else _joined(ports.listening)
        published = ", ".join(ports.published) or "none"
        lines.append(f"ports: published {published}; listening inside {listening}")
    lines += [f"  pid {p.pid:<7} {p.user:<8} {p.command[:100]}" for p in report.processes[:15]]
    return lines


def _joined(values: Sequence[int]) -> str:
    return ", ".join(map(str, values)) or "none"


def _health_lines(report: ContainerInsight) -> list[str]:
    health = report.health
    if health is None:
        return []
    line = f"state {health.state}, restarts {health.restart_count}"
    if health.exit_code is not None:
        line += f", last exit code {health.exit_code}"
    if health.oom_killed:
        line += ", OOM-killed"
    lines = [line]
    lines += [
        f"  event {e.time:%H:%M:%S} {e.action} {e.detail}".rstrip()
        + (f" (exit {e.exit_code})" if e.exit_code is not None else "")
        for e in health.events[-8:]
    ]
    return lines


def watch(
    collect: Callable[[], Sequence[ContainerInsight]],
    clock: Callable[[], datetime],
    out: TextIO,
    *,
    interval: float,
    as_json: bool,
    stop: threading.Event,
    color: bool,
) -> None:
    """Refresh until ``stop`` is set: the table redrawn in place, or one JSON line a round."""
    while not stop.is_set():
        reports = collect()
        if as_json:
            out.write(json.dumps(to_json(reports, clock())) + "\n")
        else:
            stamp = f"sidekick insight, {clock():%H:%M:%S} (every {interval:g} s, Ctrl-C ends)"
            out.write(HOME_AND_CLEAR + stamp + "\n" + render_table(reports, color=color) + "\n")
        out.flush()
        stop.wait(interval)

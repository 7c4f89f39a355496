"""What ``sidekick status`` shows: the list as the daemon last saw it, runs, costs, notes.

The daemon writes ``status.json`` after every reconcile so that the command
needs neither the list's source (a Google Sheet costs a request) nor the
runtime; runs and costs come from the state store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sidekick import versioned
from sidekick.models import AgentRun, Finding, Project

STATUS_NAME = "status.json"
# The file's major format: a reader refuses a newer one and reads every older one.
STATUS_FORMAT = 1


@dataclass
class StatusReport:
    updated_at: float
    source: str
    projects: list[dict[str, Any]] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    degraded: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)


def build_report(
    source: str,
    projects: Sequence[Project],
    findings: Sequence[Finding],
    notes: dict[str, str],
    *,
    degraded: Sequence[str] = (),
    waiting: Sequence[str] = (),
) -> StatusReport:
    rows = [
        {
            "project": p.name,
            "priority": p.priority,
            "status": p.status.value,
            "agent": p.agent,
            "last_update": p.last_update,
            "gpu": p.gpu,
            "deadline": p.deadline.isoformat() if p.deadline else "",
            "model": p.model,
        }
        for p in sorted(projects, key=lambda p: (p.priority, p.position))
    ]
    return StatusReport(
        time.time(), source, rows, [str(f) for f in findings], notes, list(degraded), list(waiting)
    )


def write_report(state_dir: Path, report: StatusReport) -> None:
    path = state_dir / STATUS_NAME
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(versioned.dump(report, STATUS_FORMAT), encoding="utf-8")
    os.replace(tmp, path)


def read_report(state_dir: Path) -> StatusReport | None:
    """The last report, None before the first; a file no version can read is a StateFileError."""
    path = state_dir / STATUS_NAME
    return versioned.read(StatusReport, path, STATUS_FORMAT)


# What a row lacks when an older version wrote the report.
_ROW_DEFAULTS: dict[str, Any] = {
    "project": "",
    "priority": 0,
    "status": "",
    "agent": "",
    "last_update": "",
    "gpu": False,
    "deadline": "",
    "model": "",
}


def status_data(
    report: StatusReport | None,
    active: dict[str, AgentRun],
    costs: dict[str, float],
    nodes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One JSON-ready view joining the list, the open runs, the costs and, for agents on
    a cluster, the node each runs on (by agent key)."""
    projects = []
    for written in report.projects if report else []:
        row = {**_ROW_DEFAULTS, **written}
        key = _key_of(row["agent"], active, row["project"])
        run = active.get(key)
        projects.append(
            {
                **row,
                "node": (nodes or {}).get(key, "") if run else "",
                "running_since": run.started_at.isoformat() if run else None,
                "cost_usd": round(costs.get(row["project"], 0.0), 6),
                "note": report.notes.get(row["project"], "") if report else "",
            }
        )
    return {
        "source": report.source if report else None,
        "updated_at": report.updated_at if report else None,
        "projects": projects,
        "findings": report.findings if report else [],
        "degraded": report.degraded if report else [],
        "waiting": report.waiting if report else [],
        "total_cost_usd": round(sum(costs.values()), 6),
        "live_agents": sorted(active),
        "agents_without_row": _agents_without_row(projects, active),
    }


def _agents_without_row(
    projects: list[dict[str, Any]], active: dict[str, AgentRun]
) -> list[dict[str, str]]:
    """Agents kept while their row is in the list but not served (a bad cell, a duplicate)."""
    listed = {p["project"] for p in projects}
    return [
        {"key": key, "project": run.project}
        for key, run in sorted(active.items())
        if run.project not in listed
    ]


def _key_of(agent: str, active: dict[str, AgentRun], project: str) -> str:
    for key, run in active.items():
        if run.project == project:
            return key
    return agent


def _agent_cell(project: Mapping[str, Any]) -> str:
    agent = str(project["agent"] or "-")
    node = project.get("node")
    return f"{agent} on {node}" if node else agent


def render_table(data: dict[str, Any]) -> str:
    """A plain-text table for a person."""
    header = ("PRI", "PROJECT", "STATUS", "AGENT", "COST", "NOTE")
    rows = [
        (
            str(p["priority"]),
            p["project"],
            p["status"],
            _agent_cell(p),
            f"${p['cost_usd']:.2f}",
            p["note"] or p["last_update"],
        )
        for p in data["projects"]
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]
        for r in [header, *rows]
    ]
    lines.append(
        f"total cost ${data['total_cost_usd']:.2f}; live agents: {len(data['live_agents'])}"
    )
    lines.extend(
        f"agent {a['key']} runs on for {a['project']}, whose row is not served (see the problems)"
        for a in data["agents_without_row"]
    )
    lines.extend(f"problem: {f}" for f in data["findings"])
    lines.extend(f"degraded: {d}" for d in data["degraded"])
    lines.extend(f"waiting: {w}" for w in data["waiting"])
    if data["source"] is None:
        lines.insert(0, "(the daemon has not reconciled yet: no list seen)")
    return "\n".join(lines)

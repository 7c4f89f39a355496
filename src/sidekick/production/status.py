"""``sidekick prod status``: every production container from one list call per engine.

The list call carries state, health (in its status text), uptime, ports, image
and labels. Only a container in trouble (unhealthy, restarting, exited) is
inspected for what the list lacks: the failing probe's output, its restart
count and whether it was OOM-killed. A healthy project costs one list call,
plus one image list for the build times.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import ContainerError
from sidekick.containers.records import ContainerInfo
from sidekick.containers.scope import ScopedEngine, service_of
from sidekick.production.target import Target

_HEALTH = re.compile(r"\((healthy|unhealthy|health: starting)\)")
_PROBLEM_STATES = frozenset({"restarting", "exited", "dead"})


@dataclass(frozen=True)
class ContainerRow:
    project: str
    container: str
    service: str
    state: str
    health: str
    uptime: str
    ports: str
    image: str
    built: str
    release: str
    restarts: int | None = None
    oom_killed: bool | None = None
    exit_code: int | None = None
    probe: str = ""


@dataclass(frozen=True)
class ProjectStatus:
    project: str
    rows: tuple[ContainerRow, ...] = ()
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "problem": self.problem,
            "containers": [asdict(r) for r in self.rows],
        }

    @property
    def healthy(self) -> bool:
        return not self.problem and bool(self.rows) and all(_row_ok(r) for r in self.rows)


def health_of(info: ContainerInfo) -> str:
    """healthy, unhealthy, starting, or empty when the container has no health check."""
    found = _HEALTH.search(str(info.raw.get("Status", "")))
    return found.group(1).removeprefix("health: ") if found else ""


def project_status(target: Target, engine: ContainerEngine, release: str) -> ProjectStatus:
    scoped = target.engine(engine)
    try:
        rows = target.select(scoped.list())
        built = scoped.image_created(
            str(r.raw.get("ImageID", "")) for r in rows if r.raw.get("ImageID")
        )
    except ContainerError as exc:
        return ProjectStatus(target.name, problem=str(exc).removeprefix(f"{target.name}: "))
    if not rows:
        return ProjectStatus(target.name, problem=_nothing_found(target))
    found = tuple(_row(target, scoped, r, built, release) for r in rows)
    return ProjectStatus(target.name, found + _missing(target, rows, release))


def _missing(target: Target, rows: list[ContainerInfo], release: str) -> tuple[ContainerRow, ...]:
    """A row for each configured service (or named container) that has no container: it is
    down as surely as an exited one, though ``docker compose ps`` leaves it out."""
    services, names = {service_of(r) for r in rows}, {r.name for r in rows}
    absent = [s for s in target.settings.services if s not in services]
    absent += [n for n in target.settings.containers if n not in names]
    return tuple(
        ContainerRow(
            project=target.name,
            container="",
            service=each,
            state="missing",
            health="",
            uptime="",
            ports="",
            image="",
            built="",
            release=release,
        )
        for each in absent
    )


def _nothing_found(target: Target) -> str:
    if target.compose is not None:
        return f"no containers of Compose project {target.compose.name!r} on this engine"
    return f"none of the containers {', '.join(target.settings.containers)} exists"


def _row(
    target: Target,
    scoped: ScopedEngine,
    info: ContainerInfo,
    built: Mapping[str, datetime],
    release: str,
) -> ContainerRow:
    raw = info.raw
    image_id = str(raw.get("ImageID", ""))
    when = built.get(image_id)
    row = ContainerRow(
        project=target.name,
        container=info.name,
        service=service_of(info),
        state=info.state,
        health=health_of(info),
        uptime=_uptime(info),
        ports=_ports(raw.get("Ports") or []),
        image=info.image,
        built=when.isoformat(timespec="seconds") if when else "",
        release=release,
        exit_code=info.exit_code,
    )
    return _look_closer(scoped, row) if _in_trouble(row) else row


def _in_trouble(row: ContainerRow) -> bool:
    return row.health == "unhealthy" or row.state in _PROBLEM_STATES


def _look_closer(scoped: ScopedEngine, row: ContainerRow) -> ContainerRow:
    try:
        raw = scoped.inspect(row.container).raw
    except ContainerError:
        return row
    state = raw.get("State") or {}
    probes = (state.get("Health") or {}).get("Log") or []
    last = str(probes[-1].get("Output", "")).strip() if probes else ""
    return replace(
        row,
        probe=last if row.health == "unhealthy" else "",
        restarts=int(raw.get("RestartCount", 0)),
        oom_killed=bool(state.get("OOMKilled")),
    )


def _uptime(info: ContainerInfo) -> str:
    text = _HEALTH.sub("", str(info.raw.get("Status", ""))).strip()
    return text.removeprefix("Up ") if info.state == "running" else text


def _ports(ports: list[Mapping[str, Any]]) -> str:
    shown = sorted({_port(p) for p in ports})
    return ", ".join(shown)


def _port(port: Mapping[str, Any]) -> str:
    inside = f"{port.get('PrivatePort')}/{port.get('Type', 'tcp')}"
    if not port.get("PublicPort"):
        return inside
    return f"{port.get('IP') or '*'}:{port['PublicPort']}->{inside}"


def _row_ok(row: ContainerRow) -> bool:
    return row.state == "running" and row.health in ("healthy", "")


# --- the person's table ----------------------------------------------------------------

_COLUMNS = ("container", "service", "state", "health", "uptime", "restarts", "ports", "image")


def render(statuses: list[ProjectStatus]) -> str:
    return "\n\n".join(_render_one(s) for s in statuses)


def _render_one(status: ProjectStatus) -> str:
    release = status.rows[0].release if status.rows else ""
    if release == "r0":
        release = "r0: as before the first deploy"
    head = f"{status.project}" + (f" (release {release})" if release else "")
    if status.problem:
        return f"{head}: {status.problem}"
    cells = [[_cell(r, c) for c in _COLUMNS] for r in status.rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(_COLUMNS)]
    lines = [head, _line([c.upper() for c in _COLUMNS], widths)]
    lines += [_line(line, widths) for line in cells]
    lines += [f"  {r.container}: last probe: {r.probe}" for r in status.rows if r.probe]
    lines += [f"  {r.container}: killed for lack of memory" for r in status.rows if r.oom_killed]
    return "\n".join(lines)


def _cell(row: ContainerRow, column: str) -> str:
    if column == "state" and row.exit_code is not None:
        return f"{row.state} ({row.exit_code})"
    if column == "image" and row.built:
        return f"{row.image} (built {row.built})"
    value = getattr(row, column)
    return "-" if value is None or value == "" else str(value)


def _line(cells: list[str], widths: list[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

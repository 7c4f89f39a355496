"""What the pages show, read from what the daemon already records.

The list comes from the daemon's status report (``status.json``), runs, costs
and the audit log from its state store, health from its heartbeat. Nothing is
kept here: every page is the daemon's record at the moment it is asked for.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sidekick.agent_usage import describe
from sidekick.config import Config
from sidekick.errors import StateFileError
from sidekick.health import heartbeat_path, read_heartbeat, verdict
from sidekick.insight.kept import last_report
from sidekick.models import ProjectStatus
from sidekick.production.store import ProductionStore
from sidekick.state import StateStore
from sidekick.status import STATUS_NAME, read_report, status_data
from sidekick.web.action_requests import ActionRequests
from sidekick.web.production_plans import Plan, production_plan, undeployed

logger = logging.getLogger(__name__)

DIFF_LIMIT = 200_000
GIT_TIMEOUT = 5.0
# A resource sample older than this (a daemon that stopped sampling) is shown as "-".
USAGE_MAX_AGE = 30.0


@dataclass
class Board:
    """The daemon's records, opened once for the dashboard's lifetime."""

    config: Config
    store: StateStore = field(init=False)
    requests: ActionRequests = field(init=False)
    _production_store: ProductionStore = field(init=False)

    def __post_init__(self) -> None:
        db = self.config.daemon.state_dir / "sidekick.db"
        self.store = StateStore(db)
        self.requests = ActionRequests(db)
        self._production_store = ProductionStore(db)

    def close(self) -> None:
        self._production_store.close()
        self.requests.close()
        self.store.close()

    @property
    def state_dir(self) -> Path:
        return self.config.daemon.state_dir

    def fingerprint(self) -> tuple[int, ...]:
        """Changes whenever the daemon writes a report or answers a request."""
        try:
            stat = (self.state_dir / STATUS_NAME).stat()
            written = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            written = (0, 0)
        return (*written, *self.requests.fingerprint())

    def projects(self) -> dict[str, Any]:
        data = status_data(
            read_report(self.state_dir), self.store.active_runs(), self.store.costs()
        )
        for row in data["projects"]:
            row["can_stop"] = row["running_since"] is not None
            row["can_requeue"] = row["status"] == ProjectStatus.FAILED.value
            row["has_production"] = row["project"] in self.config.production
            # As the daemon wrote it when a run ended or a deploy finished: no diff here.
            row["undeployed"] = undeployed(row["last_update"]) if row["has_production"] else None
        data["requests"] = self.requests.recent(limit=10)
        return data

    def project(self, name: str) -> dict[str, Any] | None:
        listed = self.projects()
        row = next((p for p in listed["projects"] if p["project"] == name), None)
        runs = self.store.runs(name, 50)
        if row is None and not runs:
            return None
        active = next((r for r in self.store.active_runs().values() if r.project == name), None)
        return {
            "name": name,
            "row": row,
            "runs": runs,
            "active": active,
            "tail": read_tail(Path(active.log_path), self.config.web.tail_bytes)
            if active and active.log_path
            else "",
            "events": self.store.events(name, 50),
            "requests": self.requests.recent(name),
            "directory": self.config.project_directory(name),
            "production": self._production(name),
            "investigation": last_report(self.config, name),
        }

    def production_plan(self, action: str, project: str) -> Plan:
        return production_plan(self.config, self._production_store, action, project)

    def _production(self, name: str) -> dict[str, Any] | None:
        """Releases and the production audit log, once the project has any."""
        releases = self._production_store.releases(name, 20)
        audit = self._production_store.audit_log(name, 20)
        if not releases and not audit:
            return None
        return {"releases": releases, "audit": audit}

    def agents(self) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        usage = self._usage()
        agents = []
        for key, run in sorted(self.store.active_runs().items()):
            cpu, memory = describe(usage.get(key))
            agents.append(
                {
                    "key": key,
                    "run": run,
                    "runtime": _duration((now - run.started_at).total_seconds()),
                    "output_bytes": _size(run.log_path),
                    "cpu": cpu,
                    "memory": memory,
                }
            )
        return agents

    def _usage(self) -> dict[str, dict[str, float]]:
        """The daemon's last resource sample per agent, from its heartbeat (none when stale)."""
        try:
            beat = read_heartbeat(heartbeat_path(self.state_dir))
        except StateFileError as exc:
            logger.warning("cannot read the heartbeat: %s", exc)
            return {}
        if beat is None or beat.stopped:
            return {}
        fresh = time.time() - USAGE_MAX_AGE
        return {key: u for key, u in beat.agent_usage.items() if u.get("at", 0.0) >= fresh}

    def health(self) -> dict[str, Any]:
        beat = read_heartbeat(heartbeat_path(self.state_dir))
        healthy, why = verdict(beat, self.config.daemon.heartbeat_max_age)
        return {"healthy": healthy, "why": why, "beat": beat, "now": time.time()}

    def costs(self) -> dict[str, Any]:
        by_day = costs_by_day(self.store.path)
        per_project = self.store.costs()
        budget = self.config.budget
        return {
            "by_day": by_day,
            "chart": bar_chart(by_day),
            "per_project": sorted(per_project.items(), key=lambda kv: -kv[1]),
            "total": sum(per_project.values()),
            "budget_total": budget.total_usd,
            "budget_per_project": budget.per_project_usd,
        }


def read_tail(path: Path, limit: int) -> str:
    """The last ``limit`` bytes of a log as text, starting at a whole line when it can."""
    try:
        with path.open("rb") as log:
            size = log.seek(0, os.SEEK_END)
            log.seek(max(0, size - limit))
            data = log.read(limit)
    except OSError:
        return ""
    if size > limit and b"\n" in data:
        data = data.split(b"\n", 1)[1]
    return data.decode("utf-8", errors="replace")


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size if path else 0
    except OSError:
        return 0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(max(0.0, seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def costs_by_day(db_path: Path) -> list[tuple[str, float]]:
    """Spend per calendar day (UTC) of the runs' start, oldest first."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT substr(started_at, 1, 10), SUM(cost_usd) FROM runs"
            " WHERE cost_usd IS NOT NULL GROUP BY 1 ORDER BY 1"
        ).fetchall()
    except sqlite3.Error as exc:
        logger.warning("cannot read costs from %s: %s", db_path, exc)
        rows = []
    finally:
        db.close()
    return [(str(day), float(total)) for day, total in rows]


CHART_WIDTH, CHART_HEIGHT = 600, 200


def bar_chart(by_day: list[tuple[str, float]]) -> list[dict[str, Any]]:
    """Bars for an inline SVG: one per day, the highest day filling the height."""
    days = by_day[-30:]
    top = max((total for _, total in days), default=0.0) or 1.0
    width = min(CHART_WIDTH / max(len(days), 1), 48.0)
    bars = []
    for index, (day, total) in enumerate(days):
        height = CHART_HEIGHT * total / top
        bars.append(
            {
                "day": day,
                "total": total,
                "x": round(index * width + 2, 1),
                "y": round(CHART_HEIGHT - height, 1),
                "width": round(max(width - 4, 1), 1),
                "height": round(height, 1),
            }
        )
    return bars


async def git_change(directory: Path | None) -> dict[str, str] | None:
    """``git diff --stat`` and the diff of the workspace against its last commit."""
    if directory is None or not (directory / ".git").exists():
        return None
    stat = await _git(directory, "diff", "--stat", "HEAD")
    diff = await _git(directory, "diff", "HEAD")
    if stat is None or diff is None:
        return None
    cut = len(diff) > DIFF_LIMIT
    return {"stat": stat, "diff": diff[:DIFF_LIMIT], "cut": "yes" if cut else ""}


async def _git(directory: Path, *args: str) -> str | None:
    process = await asyncio.create_subprocess_exec(
        "git",
        "-C",
        str(directory),
        "--no-pager",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), GIT_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        return None
    return out.decode("utf-8", errors="replace") if process.returncode == 0 else None

"""``insight.investigate: auto``: one investigation per incident of a production container.

An incident is a container showing one of the serious problems (unhealthy,
OOM-killed, a restart loop); it lasts while the problem is seen, and its
investigation is started once. The open incidents are kept in a file beside
the reports, so a daemon restart does not investigate them again. Only one
investigation runs at a time: a check that finds one under way does nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sidekick import stopping
from sidekick.config import Config
from sidekick.containers.engine import ContainerEngine
from sidekick.insight.investigate import Investigator, investigation_runner
from sidekick.insight.kept import investigations_dir
from sidekick.insight.problems import Problem, ProblemKind, thresholds_of
from sidekick.insight.report import ContainerInsight, InsightCollector
from sidekick.insight.targets import resolve_targets
from sidekick.state import StateStore

logger = logging.getLogger(__name__)

INCIDENT_KINDS = frozenset(
    {ProblemKind.UNHEALTHY, ProblemKind.OOM_KILLED, ProblemKind.RESTART_LOOP}
)
QUESTION = (
    "sidekick automatic investigation: {name} is {kind} ({summary}). "
    "What is wrong with it, why, and what should a person do about it?"
)

Investigate = Callable[[str, str], object]


@dataclass
class IncidentBook:
    """Open incidents by ``container|kind``, kept in a JSON file."""

    path: Path

    def read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def write(self, incidents: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(incidents, indent=2, sort_keys=True), encoding="utf-8")
        temporary.replace(self.path)


@dataclass
class AutoInvestigations:
    config: Config
    engine: ContainerEngine
    investigate: Investigate
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _running: threading.Lock = field(default_factory=threading.Lock)

    @property
    def book(self) -> IncidentBook:
        return IncidentBook(investigations_dir(self.config) / "incidents.json")

    def tick(self) -> list[str]:
        """Look once; investigate each new incident. Returns the incidents investigated."""
        if self.config.insight.investigate != "auto":
            return []
        if not self._running.acquire(blocking=False):
            logger.info("an investigation is under way: no new one starts")
            return []
        try:
            return self._investigate_new(self._reports())
        finally:
            self._running.release()

    def _reports(self) -> list[ContainerInsight]:
        names = production_containers(self.engine, self.config)
        collector = InsightCollector(self.engine, thresholds_of(self.config.insight))
        return collector.collect(names) if names else []

    def _investigate_new(self, reports: Sequence[ContainerInsight]) -> list[str]:
        seen = {_incident(r, p): p for r in reports for p in r.problems if p.kind in INCIDENT_KINDS}
        book = self.book
        open_before = book.read()
        still_open = {key: since for key, since in open_before.items() if key in seen}
        fresh = [key for key in seen if key not in open_before]
        for key in fresh:
            still_open[key] = self.clock().isoformat(timespec="seconds")
        book.write(still_open)
        for key in fresh:
            self._one(key, seen[key])
        return fresh

    def _one(self, key: str, problem: Problem) -> None:
        name = key.split("|", 1)[0]
        question = QUESTION.format(name=name, kind=problem.kind.value, summary=problem.summary)
        logger.warning("incident %s: %s; investigating", name, problem.kind.value)
        try:
            self.investigate(name, question)
        except Exception:
            logger.exception("the investigation of %s failed", name)


def _incident(report: ContainerInsight, problem: Problem) -> str:
    return f"{report.name}|{problem.kind.value}"


def production_containers(engine: ContainerEngine, config: Config) -> list[str]:
    names: list[str] = []
    for project in config.production:
        try:
            names += resolve_targets(engine, config, [project], every=False)
        except Exception as exc:  # a project with no containers yet is no incident
            logger.debug("no production containers for %s: %s", project, exc)
    return list(dict.fromkeys(names))


def auto_investigations(config: Config) -> AutoInvestigations:
    """The daemon's: investigations on their own tmux server, recorded in the state store."""
    engine = ContainerEngine(config.containers)
    runner = investigation_runner(config)
    timeout = config.insight.investigation_timeout

    def investigate(name: str, question: str) -> object:
        store = StateStore(config.daemon.state_dir / "sidekick.db")
        try:
            # A daemon asked to stop ends the investigation instead of waiting for it.
            stop = stopping.process_stop()
            investigator = Investigator(config, runner, store, engine, timeout=timeout, stop=stop)
            return investigator.investigate(name, question)
        finally:
            store.close()

    return AutoInvestigations(config, engine, investigate)

"""``sidekick insight``: resolve the targets, collect, print once or keep refreshing."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TextIO

from sidekick.config import Config
from sidekick.containers.engine import ContainerEngine
from sidekick.insight.kept import last_report
from sidekick.insight.problems import thresholds_of
from sidekick.insight.releases import last_release
from sidekick.insight.render import render_report, to_json, watch
from sidekick.insight.report import ContainerInsight, InsightCollector, Release
from sidekick.insight.targets import resolve_targets

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InsightRequest:
    targets: tuple[str, ...]
    every: bool = False
    as_json: bool = False
    watch: bool = False
    interval: float = 2.0


def run_insight(config: Config, request: InsightRequest, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    engine = ContainerEngine(config.containers)
    try:
        names = resolve_targets(engine, config, request.targets, every=request.every)
        if not names:
            print("no containers to look at (name a TARGET or use --all)", file=sys.stderr)
            return 1
        collector = InsightCollector(
            engine, thresholds_of(config.insight), _releases(config, request.targets)
        )
        if request.watch:
            return _watch(collector, names, request, out)
        reports = [_with_investigation(config, r) for r in collector.collect(names)]
        now = datetime.now(UTC)
        text = json.dumps(to_json(reports, now), indent=2) if request.as_json else None
        out.write((text or render_report(reports, color=out.isatty())) + "\n")
        return 0
    finally:
        engine.close()


def _watch(
    collector: InsightCollector, names: Sequence[str], request: InsightRequest, out: TextIO
) -> int:
    stop = threading.Event()
    try:
        watch(
            lambda: collector.collect(names),
            lambda: datetime.now(UTC),
            out,
            interval=request.interval,
            as_json=request.as_json,
            stop=stop,
            color=out.isatty(),
        )
    except KeyboardInterrupt:
        stop.set()
    return 0


def _with_investigation(config: Config, report: ContainerInsight) -> ContainerInsight:
    found = last_report(config, report.name) or (
        last_report(config, report.project) if report.project else ""
    )
    return replace(report, investigation=found) if found else report


def _releases(config: Config, targets: Sequence[str]) -> dict[str, Release]:
    releases = {}
    for target in targets:
        directory = config.project_directory(target)
        release = last_release(directory) if directory is not None else None
        if release is not None:
            releases[target] = release
    return releases

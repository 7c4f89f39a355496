"""The ``insight:`` section of config.yaml: problem thresholds and automatic investigations.

Kept apart from the insight code so config.py imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

INVESTIGATE_MODES = ("off", "auto")

Fail = Callable[[str, str], Exception]


@dataclass(frozen=True)
class InsightConfig:
    # off: investigations only when a person runs `sidekick investigate`; auto: a
    # production container that turns unhealthy, is OOM-killed or loops on restarts
    # gets one investigation per incident, never more while one runs.
    investigate: str = "off"
    check_interval: float = 30.0
    restart_window: float = 600.0
    restarts: int = 3
    memory_percent: float = 90.0
    investigation_timeout: float = 600.0


def check_insight(settings: InsightConfig, fail: Fail) -> None:
    if settings.investigate not in INVESTIGATE_MODES:
        raise fail("insight.investigate", f"expected one of {', '.join(INVESTIGATE_MODES)}")
    for key in ("check_interval", "restart_window", "investigation_timeout"):
        if getattr(settings, key) <= 0:
            raise fail(f"insight.{key}", "must be more than 0 seconds")
    if settings.restarts < 1:
        raise fail("insight.restarts", "must be at least 1")
    if not 0 < settings.memory_percent <= 100:
        raise fail("insight.memory_percent", "must be between 0 and 100")

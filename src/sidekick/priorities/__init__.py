"""Priority sources: where the ranked list of projects comes from and goes back to."""

from __future__ import annotations

from sidekick.priorities.base import (
    COLUMNS,
    DAEMON_COLUMNS,
    LastGoodSource,
    PrioritySource,
    content_version,
)

__all__ = ["COLUMNS", "DAEMON_COLUMNS", "LastGoodSource", "PrioritySource", "content_version"]

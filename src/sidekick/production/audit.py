"""Every production action, refused and unconfirmed ones included, goes into the audit log."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sidekick.production.store import AuditEntry, ProductionStore, operator


@dataclass
class Action:
    """One action being done: who, what, the plan; ``record`` writes its outcome once."""

    store: ProductionStore
    project: str
    action: str
    who: str = field(default_factory=operator)
    plan: str = ""
    clock: Callable[[], float] = time.time
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = self.clock()

    def record(self, outcome: str, detail: str = "") -> None:
        seconds = round(self.clock() - self.started, 3)
        entry = AuditEntry(
            self.started, self.project, self.who, self.action, outcome, detail, self.plan, seconds
        )
        self.store.audit(entry)

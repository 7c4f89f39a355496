"""What a deploy or rollback says on its project's row.

The note goes through the daemon's outbox (the state store), like every other
update of the list: the daemon writes it back with its own updates, re-reading
the list first, so a person's edit is never overwritten and no second writer
touches the file. The dashboard's undeployed-files figure reads it from there.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sidekick.models import RowUpdate
from sidekick.state import StateStore


def note_on_row(store: StateStore, project: str, text: str, now: datetime | None = None) -> None:
    """Queue ``text`` as the row's Last Update (``2026-11-30 12:00 UTC · deployed r3``)."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    store.queue_update(RowUpdate(project, last_update=f"{stamp} · {text}"))

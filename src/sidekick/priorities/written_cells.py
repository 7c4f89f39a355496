"""The daemon's cells as it last wrote them, to notice a save made from an older read.

A tool that reads the list, changes it and saves it whole (``sed -i``, a
script, a sync client, an editor that does not look for changes on disk) can
read just before a write-back and save just after it. Its save then puts the
daemon's cells back as they were before the write, and the daemon would act on
an outcome it has already moved past: a finished project read as In Progress
with no agent is started again, and paid for again.

So for a while after each write-back (``hold`` seconds, 60 by default: such
tools save within seconds of reading), a row whose daemon cells all read
exactly as before the write, and not as written, is taken to be such a save,
and the write is made again on top of it (the rest of that save stays). A
person who means to change a daemon cell changes it to something else, and
that stands; so does every save once the hold is over.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sidekick.models import RowUpdate

DEFAULT_HOLD = 60.0


@dataclass(frozen=True)
class _Written:
    update: RowUpdate
    before: Mapping[str, str]
    after: Mapping[str, str]
    until: float


class WrittenCells:
    """Per project: the update written, and its cells before and after (column → text)."""

    def __init__(
        self, hold: float = DEFAULT_HOLD, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.hold = hold
        self._clock = clock
        self._written: dict[str, _Written] = {}

    def __bool__(self) -> bool:
        return bool(self._written)

    def remember(
        self, update: RowUpdate, before: Mapping[str, str], after: Mapping[str, str]
    ) -> None:
        """Note a write of ``update``: the cells it changed, as they read before and after."""
        until = self._clock() + self.hold
        self._written[update.project] = _Written(update, dict(before), dict(after), until)

    def reverted(self, cells_of: Callable[[str], Mapping[str, str] | None]) -> list[RowUpdate]:
        """The updates whose rows read as before their write again.

        ``cells_of(project)`` gives a row's current cells by column, or None when
        the row is not in the list (it is then left alone). Writes older than the
        hold are forgotten.
        """
        now = self._clock()
        self._written = {p: w for p, w in self._written.items() if w.until > now}
        found = []
        for project, written in self._written.items():
            cells = cells_of(project)
            if cells is None:
                continue
            now_reads = {column: cells.get(column, "") for column in written.before}
            if now_reads == written.before and now_reads != written.after:
                found.append(written.update)
        return found

"""A priority list held in memory, with the same rules as the file and the sheet.

For tests of everything above the sources: rows are cells of text, parsed by
the same code, written back by Project name, and editable by a "person".
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence

from sidekick.models import RowUpdate, Snapshot, WriteResult
from sidekick.priorities.base import COLUMNS, content_version, parse_header, parse_rows


class InMemorySource:
    def __init__(
        self,
        rows: Sequence[Mapping[str, str]] = (),
        *,
        columns: Sequence[str] = COLUMNS,
        models: frozenset[str] | None = None,
        name: str = "memory",
    ) -> None:
        self.columns = list(columns)
        self.rows: list[dict[str, str]] = [dict(r) for r in rows]
        self.models = models
        self._name = name
        self._lock = threading.Lock()
        self.writes = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def unreachable(self) -> str:
        return ""

    def load(self) -> Snapshot:
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> Snapshot:
        header = parse_header(self.columns, self.name)
        cells = [(i + 2, [row.get(c, "") for c in self.columns]) for i, row in enumerate(self.rows)]
        projects, findings = parse_rows(header, cells, self.name, self.models)
        version = content_version(json.dumps(self.rows, sort_keys=True).encode())
        return Snapshot(tuple(projects), tuple(findings), version)

    def write_back(self, updates: Sequence[RowUpdate]) -> WriteResult:
        with self._lock:
            written, missing = [], []
            for update in updates:
                matches = [r for r in self.rows if r.get("Project", "").strip() == update.project]
                if len(matches) != 1:
                    missing.append(update.project)
                    continue
                matches[0].update(update.cells())
                written.append(update.project)
            self.writes += 1
            snapshot = self._snapshot()
            return WriteResult(tuple(written), tuple(missing), 1, snapshot.version, snapshot)

    # --- a person's edits --------------------------------------------------------

    def edit(self, project: str, **cells: str) -> None:
        """Set cells of a row; keyword names use underscores for spaces (Next_Action)."""
        with self._lock:
            row = next(r for r in self.rows if r.get("Project") == project)
            row.update({k.replace("_", " "): v for k, v in cells.items()})

    def add(self, **cells: str) -> None:
        with self._lock:
            self.rows.append({k.replace("_", " "): v for k, v in cells.items()})

    def delete(self, project: str) -> None:
        with self._lock:
            self.rows = [r for r in self.rows if r.get("Project") != project]

    def row(self, project: str) -> dict[str, str]:
        with self._lock:
            return dict(next(r for r in self.rows if r.get("Project") == project))

"""The PrioritySource protocol and the row parsing every source shares.

A source turns a table of text cells (a CSV file, a Google Sheet, a list in
memory) into a :class:`~sidekick.models.Snapshot`. The header names the
columns; each later row becomes a :class:`~sidekick.models.Project` or, when a
cell is wrong, a :class:`~sidekick.models.Finding` that names the line and the
field. A bad row never hides the good ones.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Protocol, TypeVar

from sidekick.errors import SourceLocked, SourceUnreachable, SourceUnreadable
from sidekick.models import (
    Finding,
    Project,
    ProjectStatus,
    RowUpdate,
    Snapshot,
    WriteResult,
    identity_text,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

COLUMNS = (
    "Project",
    "Priority",
    "Status",
    "Agent",
    "Last Update",
    "Next Action",
    "Deadline",
    "GPU",
    "Model",
)
OPTIONAL_COLUMNS = ("Directory",)
REQUIRED_COLUMNS = ("Project", "Priority", "Status")
DAEMON_COLUMNS = ("Status", "Agent", "Last Update")

_TRUE = frozenset({"yes", "y", "true", "1"})
_FALSE = frozenset({"no", "n", "false", "0", ""})


class PrioritySource(Protocol):
    """Where the ranked list lives. The daemon talks to nothing else."""

    @property
    def name(self) -> str:
        """A person-readable name for messages: a file path or a sheet id."""
        ...

    @property
    def unreachable(self) -> str:
        """Why the list's service does not answer (its last list still serves), or empty."""
        ...

    def load(self) -> Snapshot:
        """Read the whole list. Raises SourceUnreadable when nothing can be parsed."""
        ...

    def write_back(self, updates: Sequence[RowUpdate]) -> WriteResult:
        """Set the daemon's own cells of the named rows, keeping every other edit."""
        ...


def content_version(data: bytes) -> str:
    """The version of a list's content: equal bytes, equal version."""
    return hashlib.sha256(data).hexdigest()


def canonical_column(name: str) -> str | None:
    """The known column a header cell names (any case and spacing), or None."""
    wanted = " ".join(name.split()).casefold()
    for column in (*COLUMNS, *OPTIONAL_COLUMNS):
        if column.casefold() == wanted:
            return column
    return None


@dataclass(frozen=True)
class Header:
    """Where each known column sits in a row, and the header's raw cells."""

    cells: tuple[str, ...]
    index: dict[str, int]

    @property
    def positions(self) -> tuple[int, ...]:
        """Positions of the parsed fields in ``_FIELDS`` order (-1 where absent)."""
        return tuple(self.index.get(column, -1) for column in _FIELDS)

    def get(self, row: Sequence[str], column: str) -> str:
        i = self.index.get(column)
        if i is None or i >= len(row):
            return ""
        return row[i].strip()


def parse_header(cells: Sequence[str], source: str, line: int = 1) -> Header:
    """Map known columns to positions; a missing or repeated column is fatal."""
    index: dict[str, int] = {}
    for position, cell in enumerate(cells):
        column = canonical_column(cell)
        if column is None:
            continue
        if column in index:
            raise SourceUnreadable(source, f"line {line}: column {column!r} appears twice")
        index[column] = position
    missing = [c for c in REQUIRED_COLUMNS if c not in index]
    if missing:
        raise SourceUnreadable(
            source, f"line {line}: header lacks required column(s): {', '.join(missing)}"
        )
    return Header(tuple(cells), index)


class RowError(ValueError):
    """One cell of one row is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


def _parse_priority(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RowError("Priority", f"not a whole number: {text!r}") from None


_STATUS_BY_TEXT = {status.value: status for status in ProjectStatus}


def _parse_status(text: str) -> ProjectStatus:
    if not text:
        return ProjectStatus.PENDING
    exact = _STATUS_BY_TEXT.get(text)
    if exact is not None:
        return exact
    try:
        return ProjectStatus.parse(text)
    except ValueError as exc:
        raise RowError("Status", str(exc)) from None


def _parse_deadline(text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RowError("Deadline", f"not an ISO date (YYYY-MM-DD): {text!r}") from None


def _parse_gpu(text: str) -> bool:
    folded = text.casefold()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise RowError("GPU", f"expected yes or no, got {text!r}")


def _parse_model(text: str, models: frozenset[str] | None) -> str:
    if text and models is not None and text not in models:
        known = ", ".join(sorted(models))
        raise RowError("Model", f"unknown agent profile {text!r} (configured: {known})")
    return text


# Characters that show nothing: format (zero-width space, joiners, a stray BOM), controls,
# and separators. A cell of only these is as empty as one with nothing in it.
_INVISIBLE = frozenset({"Cf", "Cc", "Zs", "Zl", "Zp"})


def _parse_next_action(text: str) -> str:
    """The cell as typed, or "" when nothing in it can be seen."""
    # Cells come stripped, so the first character nearly always shows: one look per row
    # (this runs for every row of a list of thousands on every read).
    if not text or unicodedata.category(text[0]) not in _INVISIBLE:
        return text
    return text if any(unicodedata.category(char) not in _INVISIBLE for char in text) else ""


# The parsed fields, in the order parse_row unpacks them.
_FIELDS = (*COLUMNS, *OPTIONAL_COLUMNS)


def parse_row(
    header: Header,
    row: Sequence[str],
    line: int,
    position: int,
    *,
    models: frozenset[str] | None = None,
    positions: tuple[int, ...] = (),
) -> Project:
    """One data row to a Project; raises RowError naming the bad field."""
    width = len(row)
    cells = [row[i].strip() if 0 <= i < width else "" for i in positions or header.positions]
    name, priority, status, agent, last_update, next_action, deadline, gpu, model, directory = cells
    if not name:
        raise RowError("Project", "project name is empty")
    return Project(
        name=name,
        priority=_parse_priority(priority),
        status=_parse_status(status),
        agent=agent,
        last_update=last_update,
        next_action=_parse_next_action(next_action),
        deadline=_parse_deadline(deadline),
        gpu=_parse_gpu(gpu),
        model=_parse_model(model, models),
        directory=directory,
        line=line,
        position=position,
    )


def _is_blank(row: Sequence[str]) -> bool:
    return not "".join(row).strip()


def parse_rows(
    header: Header,
    rows: Iterable[tuple[int, Sequence[str]]],
    source: str,
    models: frozenset[str] | None = None,
) -> tuple[list[Project], list[Finding]]:
    """Every valid row as a Project, every bad one as a Finding; blank rows are skipped."""
    projects: list[Project] = []
    findings: list[Finding] = []
    positions = header.positions
    for position, (line, row) in enumerate(rows):
        if _is_blank(row):
            continue
        try:
            projects.append(
                parse_row(header, row, line, position, models=models, positions=positions)
            )
        except RowError as exc:
            name = header.get(row, "Project")
            findings.append(Finding(source, line, exc.field, exc.problem, name))
    return _drop_duplicates(projects, findings, source)


def _drop_duplicates(
    projects: list[Project], findings: list[Finding], source: str
) -> tuple[list[Project], list[Finding]]:
    """Rows that would share an agent's identity are ambiguous, so none of them is served.

    That is the same name in another case or spacing, or (rarely) two names
    whose keys meet; either way both lines are named, so a person can fix one.
    """
    lines: dict[str, list[Project]] = {}
    for project in projects:
        lines.setdefault(project.key, []).append(project)
    if len(lines) == len(projects):
        return projects, findings
    kept = []
    for project in projects:
        same = lines[project.key]
        if len(same) == 1:
            kept.append(project)
            continue
        findings.append(_collision(source, project, [p for p in same if p is not project]))
    findings.sort(key=lambda f: f.line)
    return kept, findings


def _collision(source: str, project: Project, others: list[Project]) -> Finding:
    also = ", ".join(str(p.line) for p in others)
    if all(identity_text(p.name) == identity_text(project.name) for p in others):
        problem = f"duplicate project name {project.name!r} (also on line {also}); skipped"
    else:
        names = ", ".join(repr(p.name) for p in others)
        problem = (
            f"project name {project.name!r} has the same agent name {project.key} as {names}"
            f" on line {also}; rename one; skipped"
        )
    return Finding(source, project.line, "Project", problem, project.name)


def unique_by_name(rows: Iterable[tuple[str, T]]) -> dict[str, T]:
    """Project name → its row, for write-back; a name on two rows is ambiguous: neither."""
    found: dict[str, T] = {}
    twice: set[str] = set()
    for name, row in rows:
        if name in found:
            twice.add(name)
        found[name] = row
    for name in twice:
        del found[name]
    return found


class LastGoodSource:
    """Keeps the last good list in force while a newer one cannot be had.

    A file that does not parse serves the last list with a finding saying why.
    A service that does not answer (Google down, quota spent past the retry
    deadline) serves it too, and ``unreachable`` says why until it answers
    again; a write-back that found it unreachable spares the load that follows
    in the same reconcile a second wait for the deadline.
    """

    def __init__(self, inner: PrioritySource) -> None:
        self.inner = inner
        self._last: Snapshot | None = None
        self._skip_next_load = False
        self.unreachable = ""

    @property
    def name(self) -> str:
        return self.inner.name

    def load(self) -> Snapshot:
        if self._skip_next_load and self._last is not None:
            self._skip_next_load = False
            return self._last
        try:
            snapshot = self.inner.load()
        except SourceUnreachable as exc:
            if self._last is None:
                raise
            self.unreachable = str(exc)
            logger.warning("%s; serving the list as last read", exc)
            return self._last
        except SourceLocked as exc:
            if self._last is None:
                raise
            # A save under way is no problem in the list: serve the last one and say nothing.
            logger.info("%s; serving the list as last read", exc)
            return self._last
        except SourceUnreadable as exc:
            if self._last is None:
                raise
            logger.error("%s; keeping the last good list in force", exc)
            finding = Finding(self.name, 0, "", f"{exc.problem}; keeping the last good list")
            return replace(self._last, findings=(*self._last.findings, finding))
        self._keep(snapshot)
        return snapshot

    def write_back(self, updates: Sequence[RowUpdate]) -> WriteResult:
        try:
            result = self.inner.write_back(updates)
        except SourceUnreachable as exc:
            self.unreachable = str(exc)
            self._skip_next_load = True
            raise
        if result.snapshot is not None:
            # The list as written is the last good one: serving an older one later
            # would show a finished project Pending again.
            self._keep(result.snapshot)
        return result

    def _keep(self, snapshot: Snapshot) -> None:
        self._last = snapshot
        self._skip_next_load = False
        self.unreachable = ""

"""priorities.csv on disk: read it, and write the daemon's cells back without losing an edit.

Write-back is compare-and-swap on the file's bytes: read, change only the
daemon's cells of the rows it means (found by Project name in that read),
write a temp file in the same directory, fsync it, check the file still holds
the bytes that were read, ``os.replace``, fsync the directory. If the file
changed in between, start over from the new bytes. While an editor that
overwrites on save holds the file open (its lock file exists), wait.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sidekick.errors import SourceLocked, SourceUnreadable, WriteConflict
from sidekick.models import Finding, Project, RowUpdate, Snapshot, WriteResult
from sidekick.priorities.base import (
    Header,
    content_version,
    parse_header,
    parse_rows,
    unique_by_name,
)
from sidekick.priorities.csv_table import BOM, CellEdit, Record, replace_cells, tokenize
from sidekick.priorities.watch import editor_lock_files

logger = logging.getLogger(__name__)

_ENCODING = "utf-8"
_ERRORS = "surrogateescape"


@dataclass
class _Table:
    """One read of the file: its bytes, its records, and its header."""

    raw: bytes
    text: str
    records: list[Record]
    header: Header


class CsvPrioritySource:
    """A priorities.csv file as a PrioritySource."""

    def __init__(
        self,
        path: Path,
        *,
        models: frozenset[str] | None = None,
        lock_wait: float = 2.0,
        max_attempts: int = 8,
        announce: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = Path(path)
        self.models = models
        self.lock_wait = lock_wait
        self.max_attempts = max_attempts
        self.announce = announce
        self._clock = clock
        self._sleep = sleep
        self._last: Snapshot | None = None
        self._table: _Table | None = None

    @property
    def name(self) -> str:
        return str(self.path)

    # --- reading -----------------------------------------------------------

    def load(self) -> Snapshot:
        raw = self._read_bytes()
        last = self._last
        # Parsing is a pure function of the bytes: the same bytes, the same list.
        if last is not None and last.version == content_version(raw):
            return last
        return self._snapshot(self._parse(raw))

    def _read(self) -> _Table:
        """The file as a table; the bytes last parsed are not tokenized again."""
        raw = self._read_bytes()
        table = self._table
        if table is not None and table.raw == raw:
            return table
        return self._parse(raw)

    def _read_bytes(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            raise SourceUnreadable(self.name, "file does not exist") from None
        except OSError as exc:
            raise SourceUnreadable(self.name, f"cannot be read: {exc.strerror}") from None

    def _parse(self, raw: bytes) -> _Table:
        text = raw.decode(_ENCODING, _ERRORS)
        records = tokenize(text)
        if not records or all(not v.strip() for v in records[0].values):
            raise SourceUnreadable(self.name, "line 1: header row required")
        header = parse_header(records[0].values, self.name, records[0].line)
        self._table = _Table(raw, text, records, header)
        return self._table

    def _snapshot(self, table: _Table) -> Snapshot:
        rows = ((r.line, r.values) for r in table.records[1:] if not r.problems)
        projects, findings = parse_rows(table.header, rows, self.name, self.models)
        findings.extend(self._problems(table))
        findings.extend(self._encoding_findings(table))
        findings.sort(key=lambda f: f.line)
        version = content_version(table.raw)
        self._last = Snapshot(tuple(projects), tuple(findings), version)
        return self._last

    def _problems(self, table: _Table) -> list[Finding]:
        out = []
        for record in table.records[1:]:
            for index, problem in record.problems:
                column = _column_name(table.header, index)
                out.append(Finding(self.name, record.line, column, f"{problem}; row skipped"))
        return out

    def _encoding_findings(self, table: _Table) -> list[Finding]:
        try:
            table.raw.decode(_ENCODING)
        except UnicodeDecodeError as exc:
            line = table.raw.count(b"\n", 0, exc.start) + 1
            problem = f"not valid UTF-8 at byte {exc.start}; undecodable bytes kept as they are"
            return [Finding(self.name, line, "", problem)]
        return []

    # --- writing -----------------------------------------------------------

    def write_back(self, updates: Sequence[RowUpdate]) -> WriteResult:
        for attempt in range(1, self.max_attempts + 1):
            self._wait_for_editors()
            table = self._read()
            result = self._try_write(table, updates, attempt)
            if result is not None:
                return result
            logger.info("%s changed during write-back; retrying (attempt %d)", self.name, attempt)
            # A burst of saves (an editor's autosave, a sync tool) usually settles in milliseconds.
            self._sleep(0.005 * attempt)
        problem = f"file kept changing; gave up after {self.max_attempts} tries"
        raise WriteConflict(self.name, problem)

    def _try_write(
        self, table: _Table, updates: Sequence[RowUpdate], attempt: int
    ) -> WriteResult | None:
        """Write the updates over exactly ``table.raw``; None if the file moved on."""
        plan = _plan_edits(table, updates)
        new_text = replace_cells(table.text, plan.edits)
        new_raw = new_text.encode(_ENCODING, _ERRORS)
        snapshot = self._snapshot_after(table, plan, new_raw, new_text)
        result = WriteResult(plan.written, plan.missing, attempt, snapshot.version, snapshot)
        if new_raw == table.raw:
            return result
        if not self._replace_if_unchanged(table.raw, new_raw, snapshot.version):
            return None
        logger.info("%s: wrote %d row(s)", self.name, len(plan.written))
        return result

    def _snapshot_after(self, table: _Table, plan: _EditPlan, raw: bytes, text: str) -> Snapshot:
        """The list as written; from the last load when the write started from those bytes."""
        last = self._last
        if last is None or last.version != content_version(table.raw):
            return self._snapshot(_table_after(table, plan.edits, raw, text))
        cells = plan.cells_by_project()
        projects = tuple(
            _with_cells(p, cells[p.name]) if p.name in cells else p for p in last.projects
        )
        self._last = Snapshot(projects, last.findings, content_version(raw))
        return self._last

    def _wait_for_editors(self) -> None:
        deadline = self._clock() + self.lock_wait
        locks = editor_lock_files(self.path)
        while locks:
            if self._clock() >= deadline:
                names = ", ".join(p.name for p in locks)
                raise SourceLocked(self.name, f"an editor holds it open ({names}); will retry")
            self._sleep(0.2)
            locks = editor_lock_files(self.path)

    def _replace_if_unchanged(self, expected: bytes, new_raw: bytes, version: str) -> bool:
        tmp = self._write_temp(new_raw)
        try:
            if self.announce is not None:
                self.announce(version)
            swapped = _swap_in(tmp, self.path, expected, new_raw)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        if swapped:
            _fsync_directory(self.path.parent)
        return swapped

    def _write_temp(self, data: bytes) -> Path:
        fd, name = tempfile.mkstemp(
            prefix=f".{self.path.name}.sidekick-", suffix=".tmp", dir=self.path.parent
        )
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            _copy_ownership(self.path, tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp


def _table_after(table: _Table, edits: list[CellEdit], raw: bytes, text: str) -> _Table:
    """The table as it reads after the edits, without tokenizing the new text again."""
    if not edits:
        return table
    changed: dict[int, Record] = {}
    for edit in edits:
        record = changed.get(id(edit.record))
        if record is None:
            record = replace(edit.record, values=list(edit.record.values), spans=None)
            changed[id(edit.record)] = record
        record.values.extend([""] * (edit.index + 1 - len(record.values)))
        record.values[edit.index] = edit.value
    records = [changed.get(id(r), r) for r in table.records]
    return _Table(raw, text, records, table.header)


@dataclass(frozen=True)
class _EditPlan:
    edits: list[CellEdit]
    written: tuple[str, ...]
    missing: tuple[str, ...]
    updates: dict[str, RowUpdate]

    def cells_by_project(self) -> dict[str, RowUpdate]:
        return {name: self.updates[name] for name in self.written}


def _with_cells(project: Project, update: RowUpdate) -> Project:
    return replace(
        project,
        status=update.status or project.status,
        agent=" ".join(update.agent.splitlines()) if update.agent is not None else project.agent,
        last_update=(
            " ".join(update.last_update.splitlines())
            if update.last_update is not None
            else project.last_update
        ),
    )


def _plan_edits(table: _Table, updates: Sequence[RowUpdate]) -> _EditPlan:
    """Find each update's row by Project name in this read and list the cells to change."""
    rows = _rows_by_name(table)
    edits: list[CellEdit] = []
    written: list[str] = []
    missing: list[str] = []
    for update in updates:
        record = rows.get(update.project.strip())
        if record is None:
            missing.append(update.project)
            continue
        cell_edits = _cell_edits(table.header, record, update)
        edits.extend(cell_edits)
        if cell_edits:
            written.append(update.project)
    return _EditPlan(edits, tuple(written), tuple(missing), {u.project: u for u in updates})


def _rows_by_name(table: _Table) -> dict[str, Record]:
    index = table.header.index["Project"]
    return unique_by_name(
        (record.values[index].strip(), record)
        for record in table.records[1:]
        if index < len(record.values) and not record.problems
    )


def _cell_edits(header: Header, record: Record, update: RowUpdate) -> list[CellEdit]:
    edits = []
    for column, value in update.cells().items():
        index = header.index.get(column)
        if index is None:
            logger.debug("no %r column; leaving it out of the write-back", column)
            continue
        # A daemon cell is one line, so line numbers stay true after the write.
        one_line = " ".join(value.splitlines())
        current = record.values[index] if index < len(record.values) else None
        if current is None or current.strip() != one_line:
            edits.append(CellEdit(record, index, one_line))
    return edits


def _column_name(header: Header, index: int) -> str:
    for column, position in header.index.items():
        if position == index:
            return column
    if index < len(header.cells):
        return header.cells[index].lstrip(BOM)
    return f"column {index + 1}"


def _copy_ownership(original: Path, tmp: Path) -> None:
    """The replaced file keeps the person's mode and, where permitted, their owner."""
    try:
        stat = original.stat()
    except FileNotFoundError:
        return
    os.chmod(tmp, stat.st_mode & 0o7777)
    if (stat.st_uid, stat.st_gid) != (os.geteuid(), os.getegid()):
        try:
            os.chown(tmp, stat.st_uid, stat.st_gid)
        except PermissionError:
            logger.warning("cannot keep the owner of %s (uid %d)", original, stat.st_uid)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where the filesystem cannot."""
    renameat2 = getattr(_libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _swap_in(tmp: Path, path: Path, expected: bytes, ours: bytes) -> bool:
    """Put ``tmp`` at ``path`` only if ``path`` still holds ``expected``.

    Swapping and then looking at what was displaced leaves no window in which
    a person's save can slip between the check and the replace: if the
    displaced file is not the one that was read, it is swapped straight back.
    Filesystems without an atomic exchange (some network and virtual
    filesystems) fall back to check-then-replace, which has that small window.
    """
    # The cheap check first: most saves land during the fsyncs, well before this.
    if path.read_bytes() != expected:
        return False
    if not _exchange(tmp, path):
        os.replace(tmp, path)
        return True
    if tmp.read_bytes() == expected:
        return True
    logger.info("%s was saved during write-back; putting the person's version back", path)
    _exchange(tmp, path)
    if tmp.read_bytes() != ours:
        # Another save landed between the two swaps; it is the newest, so it wins.
        _exchange(tmp, path)
    return False

"""priorities.csv on disk: read it, and write the daemon's cells back without losing an edit.

Write-back is compare-and-swap on the file's bytes: read, change only the
daemon's cells of the rows it means (found by Project name in that read),
write a temp file in the same directory, fsync it, check the file still holds
the bytes that were read, ``os.replace``, fsync the directory. If the file
changed in between, start over from the new bytes. While an editor that
overwrites on save holds the file open (its lock file exists), wait.

The file is read in its own encoding and delimiter (see ``csv_format``) and
written back in them. A symlinked list is written through the link, in the
target's directory. A save in place is never read half done nor cut in two:
while a program holds the file open for writing, reading and replacing wait;
and the replaced file is kept open afterwards, so a save that still lands in it
(a writer that /proc cannot show) is noticed and put back with the daemon's
cells on top. A whole-file save made from a read older than a write-back
(``sed -i``, a script) keeps its edits and gets the daemon's cells again (see
``written_cells``).
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
from dataclasses import dataclass, field, replace
from pathlib import Path

from sidekick import stopping
from sidekick.errors import SourceLocked, SourceUnreadable, SourceUnsettled, WriteConflict
from sidekick.models import Finding, Project, RowUpdate, Snapshot, WriteResult
from sidekick.priorities.base import (
    COLUMNS,
    OPTIONAL_COLUMNS,
    Header,
    content_version,
    parse_header,
    parse_rows,
    unique_by_name,
)
from sidekick.priorities.csv_format import (
    CsvFormat,
    describe,
    detect_encoding,
    has_undecodable,
    sniff_delimiter,
)
from sidekick.priorities.csv_table import BOM, CellEdit, Record, replace_cells, tokenize
from sidekick.priorities.watch import editor_lock_files
from sidekick.priorities.writers import identity_of, is_being_written, lease_broken, read_lease
from sidekick.priorities.written_cells import WrittenCells

logger = logging.getLogger(__name__)

_KNOWN = frozenset(c.casefold() for c in (*COLUMNS, *OPTIONAL_COLUMNS))
# How often a program that holds the file open for writing is looked for again.
_WRITER_POLL = 0.01
# A temp file of a write-back lives for milliseconds; one this old was left by a killed daemon.
_STALE_TEMP_AGE = 5.0
_SWEEP_INTERVAL = 60.0


@dataclass
class _Table:
    """One read of the file: its bytes, format, records, and header."""

    raw: bytes
    text: str
    records: list[Record]
    header: Header
    fmt: CsvFormat = field(default_factory=CsvFormat)
    header_at: int = 0
    # Whether any text failed to decode; false for almost every file, so no row is searched.
    undecodable: bool = False
    _split: tuple[list[Record], list[Record]] | None = field(default=None, repr=False)
    _by_name: dict[str, Record] | None = field(default=None, repr=False)

    @property
    def rows(self) -> list[Record]:
        return self.records[self.header_at + 1 :]

    def split(self) -> tuple[list[Record], list[Record]]:
        """The rows served, and those skipped: read with a problem, too wide, or not text."""
        if self._split is None:
            width = len(self.header.cells)
            served: list[Record] = []
            skipped: list[Record] = []
            for record in self.rows:
                bad = record.problems or len(record.values) > width
                if bad or (self.undecodable and has_undecodable(record.values)):
                    skipped.append(record)
                else:
                    served.append(record)
            self._split = served, skipped
        return self._split

    def rows_by_name(self) -> dict[str, Record]:
        """Project name → its served row; a name on two rows is ambiguous: neither."""
        if self._by_name is None:
            index = self.header.index["Project"]
            self._by_name = unique_by_name(
                (record.values[index].strip(), record)
                for record in self.split()[0]
                if index < len(record.values)
            )
        return self._by_name


@dataclass
class _Displaced:
    """The file a write-back replaced, kept open to notice a save that still lands in it."""

    fd: int
    signature: tuple[int, int, int]
    written: bytes
    updates: tuple[RowUpdate, ...]

    def close(self) -> None:
        os.close(self.fd)


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
        sleep: Callable[[float], None] = stopping.sleep,
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
        self._displaced: _Displaced | None = None
        self._written = WrittenCells(clock=clock)
        self._next_sweep = 0.0

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def unreachable(self) -> str:
        """A file is read or unreadable, never out of reach: always empty."""
        return ""

    # --- reading -----------------------------------------------------------

    def load(self) -> Snapshot:
        self._sweep_stale_temps()
        self._recover_displaced()
        raw = self._read_bytes()
        last = self._last
        # Parsing is a pure function of the bytes: the same bytes, the same list.
        if last is not None and last.version == content_version(raw):
            return last
        table = self._parse(raw)
        if self._written:
            table = self._restore_reverted(table)
        return self._snapshot(table)

    def _read(self) -> _Table:
        """The file as a table; the bytes last parsed are not tokenized again."""
        raw = self._read_bytes()
        table = self._table
        if table is not None and table.raw == raw:
            return table
        return self._parse(raw)

    def _read_bytes(self) -> bytes:
        """The file's bytes once no program is in the middle of writing it."""
        deadline = self._clock() + self.lock_wait
        while True:
            raw, writing = self._read_once(check_writers=True)
            if not writing:
                return raw
            if self._clock() >= deadline:
                problem = "a program is still saving it; will read it when the save is done"
                raise SourceUnsettled(self.name, problem)
            self._sleep(_WRITER_POLL)

    def _read_once(self, *, check_writers: bool = False) -> tuple[bytes, bool]:
        """The bytes, and whether a program had the file open for writing or wrote it meanwhile.

        The file read is compared with itself after the check, not with what the
        path shows then: by that time a save by rename may have put a whole file
        there, and the one read may still be cut.
        """
        try:
            with self.path.open("rb") as handle:
                signature = _signature_of(os.fstat(handle.fileno()))
                raw = handle.read()
                if not check_writers:
                    return raw, False
                writing = is_being_written(handle.fileno(), self._target())
                changed = _signature_of(os.fstat(handle.fileno())) != signature
                return raw, writing or changed
        except FileNotFoundError:
            raise SourceUnreadable(self.name, "file does not exist") from None
        except OSError as exc:
            raise SourceUnreadable(self.name, f"cannot be read: {exc.strerror}") from None

    def _target(self) -> Path:
        """The file itself: a symlinked list is read and written at the link's target."""
        return Path(os.path.realpath(self.path))

    def _parse(self, raw: bytes) -> _Table:
        fmt, text = self._decode(raw)
        delimiter, header_at = sniff_delimiter(text, _KNOWN)
        fmt = replace(fmt, delimiter=delimiter)
        records = tokenize(text, delimiter)
        if len(records) <= header_at or all(not v.strip() for v in records[header_at].values):
            raise SourceUnreadable(self.name, f"line {header_at + 1}: header row required")
        head = records[header_at]
        try:
            header = parse_header(head.values, self.name, head.line)
        except SourceUnreadable as exc:
            raise SourceUnreadable(self.name, _header_hint(exc.problem, fmt)) from None
        undecodable = has_undecodable([text])
        self._table = _Table(raw, text, records, header, fmt, header_at, undecodable)
        return self._table

    def _decode(self, raw: bytes) -> tuple[CsvFormat, str]:
        fmt = CsvFormat(detect_encoding(raw))
        try:
            return fmt, fmt.decode(raw)
        except UnicodeDecodeError as exc:
            # Only UTF-16 can fail here: an odd number of bytes, a file cut short.
            problem = f"not whole {fmt.encoding_name} text (byte {exc.start}); save it again"
            raise SourceUnreadable(self.name, problem) from None

    def _snapshot(self, table: _Table) -> Snapshot:
        rows = ((r.line, r.values) for r in table.split()[0])
        projects, findings = parse_rows(table.header, rows, self.name, self.models)
        findings.extend(self._problems(table))
        findings.sort(key=lambda f: f.line)
        version = content_version(table.raw)
        self._last = Snapshot(tuple(projects), tuple(findings), version)
        return self._last

    def _problems(self, table: _Table) -> list[Finding]:
        out = []
        width = len(table.header.cells)
        for record in table.split()[1]:
            for index, problem in record.problems:
                column = _column_name(table.header, index)
                skipped = f"{problem}; row skipped"
                out.append(Finding(self.name, record.line, column, skipped, _name(table, record)))
            if not record.problems:
                out.extend(self._shape_findings(table, record, width))
        return out

    def _shape_findings(self, table: _Table, record: Record, width: int) -> list[Finding]:
        if len(record.values) > width and "".join(record.values).strip():
            problem = (
                f"{len(record.values)} fields but the header has {width} "
                f"(an unquoted {describe(table.fmt.delimiter)[:-1]} in a cell?); row skipped"
            )
            return [Finding(self.name, record.line, "", problem, _name(table, record))]
        if table.undecodable and has_undecodable(record.values):
            problem = f"holds bytes that are not {table.fmt.encoding_name} text; row skipped"
            return [Finding(self.name, record.line, "", problem, _name(table, record))]
        return []

    # --- litter and displaced saves ----------------------------------------------------

    def _sweep_stale_temps(self) -> None:
        """Remove temp files a killed write-back left beside the list (a previous life's)."""
        now = time.time()
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL
        target = self._target()
        for tmp in target.parent.glob(f".{target.name}.sidekick-*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                if now - tmp.lstat().st_mtime >= _STALE_TEMP_AGE:
                    tmp.unlink()
                    logger.info("removed %s, left by an interrupted write-back", tmp)

    def _recover_displaced(self) -> None:
        """A save that landed in the file a write-back replaced is put back, not dropped."""
        displaced = self._displaced
        if displaced is None or _signature_of(os.fstat(displaced.fd)) == displaced.signature:
            return
        if is_being_written(displaced.fd, self._target()):
            # The save is still landing; it is put back once it is whole.
            return
        self._displaced = None
        kept = False
        try:
            self._put_back(displaced)
        except WriteConflict as exc:
            logger.warning("%s; a save that landed in the replaced file waits to be put back", exc)
            if self._displaced is None:
                self._displaced, kept = displaced, True
        finally:
            if not kept:
                displaced.close()

    def _put_back(self, displaced: _Displaced) -> None:
        saved = _read_fd(displaced.fd)
        current = self._read_once()[0]
        if current != displaced.written:
            logger.warning(
                "%s: a save landed in the replaced file, and a newer save followed "
                "it; the newer one stands",
                self.name,
            )
            return
        logger.warning(
            "%s: a save landed in the file a write-back replaced; putting it back", self.name
        )
        table = self._parse(saved)
        if self._try_write(table, displaced.updates, 1, expected=current) is None:
            logger.warning("%s changed while a displaced save was put back", self.name)

    def _restore_reverted(self, table: _Table) -> _Table:
        """Write the daemon's cells again where a save from an older read put the old ones back."""
        updates = self._reverted(table, ())
        if not updates:
            return table
        try:
            if self._try_write(table, updates, 1) is None:
                # The file moved again; the next load looks again.
                return table
        except WriteConflict as exc:
            logger.warning("%s", exc)
            return table
        return self._parse(self._read_bytes())

    def _reverted(self, table: _Table, updates: Sequence[RowUpdate]) -> list[RowUpdate]:
        """Earlier writes whose cells read as before them again (rows not in ``updates``)."""
        if not self._written:
            return []
        rows = table.rows_by_name()
        names = {u.project for u in updates}

        def cells_of(project: str) -> dict[str, str] | None:
            return _cells_by_column(table, rows.get(project.strip()))

        found = [u for u in self._written.reverted(cells_of) if u.project not in names]
        if found:
            logger.warning(
                "%s: a save made from the list as it read before a write-back put back the "
                "daemon's old cells of %s; writing them again",
                self.name,
                ", ".join(u.project for u in found),
            )
        return found

    # --- writing -----------------------------------------------------------

    def write_back(self, updates: Sequence[RowUpdate]) -> WriteResult:
        self._sweep_stale_temps()
        self._recover_displaced()
        for attempt in range(1, self.max_attempts + 1):
            self._wait_for_editors()
            try:
                table = self._read()
            except SourceUnsettled:
                raise
            except SourceUnreadable as exc:
                # Half a save, or a file the person is fixing: the updates wait in the outbox.
                raise SourceUnsettled(self.name, f"{exc.problem}; write-back postponed") from None
            result = self._try_write(table, [*updates, *self._reverted(table, updates)], attempt)
            if result is not None:
                return result
            logger.info("%s changed during write-back; retrying (attempt %d)", self.name, attempt)
            # A burst of saves (an editor's autosave, a sync tool) usually settles in milliseconds.
            self._sleep(0.005 * attempt)
        problem = f"file kept changing; gave up after {self.max_attempts} tries"
        raise WriteConflict(self.name, problem)

    def _try_write(
        self,
        table: _Table,
        updates: Sequence[RowUpdate],
        attempt: int,
        expected: bytes | None = None,
    ) -> WriteResult | None:
        """Write the updates over ``expected`` (default: the bytes read); None if the file moved."""
        plan = _plan_edits(table, updates)
        new_text = replace_cells(table.text, plan.edits)
        new_raw = table.fmt.encode(new_text)
        snapshot = self._snapshot_after(table, plan, new_raw, new_text)
        result = WriteResult(plan.written, plan.missing, attempt, snapshot.version, snapshot)
        expected = table.raw if expected is None else expected
        if new_raw == expected:
            return result
        if not self._replace_if_unchanged(expected, new_raw, snapshot.version, updates):
            return None
        logger.info("%s: wrote %d row(s)", self.name, len(plan.written))
        self._remember(table, plan)
        return result

    def _remember(self, table: _Table, plan: _EditPlan) -> None:
        """Keep each written row's daemon cells as they read before and after the write."""
        rows = table.rows_by_name()
        edits_of: dict[int, list[CellEdit]] = {}
        for edit in plan.edits:
            edits_of.setdefault(id(edit.record), []).append(edit)
        for name in plan.written:
            record = rows[name.strip()]
            edits = edits_of[id(record)]
            before = {_column_name(table.header, e.index): _cell(record, e.index) for e in edits}
            after = {_column_name(table.header, e.index): e.value.strip() for e in edits}
            self._written.remember(plan.updates[name], before, after)

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
        locks = self._editor_locks()
        while locks:
            if self._clock() >= deadline:
                names = ", ".join(p.name for p in locks)
                raise SourceLocked(self.name, f"an editor holds it open ({names}); will retry")
            self._sleep(0.2)
            locks = self._editor_locks()

    def _editor_locks(self) -> list[Path]:
        """Lock files beside the name the person opened, or beside the link's target."""
        target = self._target()
        locks = editor_lock_files(self.path)
        return locks + editor_lock_files(target) if target != self.path else locks

    def _replace_if_unchanged(
        self, expected: bytes, new_raw: bytes, version: str, updates: Sequence[RowUpdate]
    ) -> bool:
        """Swap the new bytes in if the file still holds ``expected``; False if it moved.

        Raises WriteConflict when the file system refuses (the list deleted meanwhile,
        a read-only or full directory): the updates wait for the next reconcile.
        """
        try:
            return self._swap_new_bytes(expected, new_raw, version, updates)
        except OSError as exc:
            problem = f"cannot be written ({exc.strerror or exc}); the updates wait"
            raise WriteConflict(self.name, problem) from None

    def _swap_new_bytes(
        self, expected: bytes, new_raw: bytes, version: str, updates: Sequence[RowUpdate]
    ) -> bool:
        target = self._target()
        tmp = self._write_temp(new_raw)
        try:
            if self.announce is not None:
                self.announce(version)
            displaced = _swap_in(tmp, target, expected, new_raw)
            if displaced is not None:
                self._keep_displaced(displaced, new_raw, updates)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        if displaced is not None:
            _fsync_directory(target.parent)
        return displaced is not None

    def _keep_displaced(self, fd: int, written: bytes, updates: Sequence[RowUpdate]) -> None:
        if self._displaced is not None:
            self._displaced.close()
        signature = _signature_of(os.fstat(fd))
        self._displaced = _Displaced(fd, signature, written, tuple(updates))

    def _write_temp(self, data: bytes) -> Path:
        target = self._target()
        fd, name = tempfile.mkstemp(
            prefix=f".{target.name}.sidekick-", suffix=".tmp", dir=target.parent
        )
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            _copy_ownership(target, tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp


def _signature_of(status: os.stat_result) -> tuple[int, int, int]:
    return status.st_ino, status.st_size, status.st_mtime_ns


def _header_hint(problem: str, fmt: CsvFormat) -> str:
    return (
        f"{problem} (read as {fmt.encoding_name} with fields separated by "
        f"{describe(fmt.delimiter)}); save it as CSV with a header row naming "
        "Project, Priority and Status, separated by commas, semicolons or tabs"
    )


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
    return _Table(raw, text, records, table.header, table.fmt, table.header_at, table.undecodable)


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
    rows = table.rows_by_name()
    edits: list[CellEdit] = []
    written: list[str] = []
    missing: list[str] = []
    for update in updates:
        record = rows.get(update.project.strip())
        if record is None:
            missing.append(update.project)
            continue
        cell_edits = _cell_edits(table, record, update)
        edits.extend(cell_edits)
        if cell_edits:
            written.append(update.project)
    return _EditPlan(edits, tuple(written), tuple(missing), {u.project: u for u in updates})


def _cell_edits(table: _Table, record: Record, update: RowUpdate) -> list[CellEdit]:
    edits = []
    for column, value in update.cells().items():
        index = table.header.index.get(column)
        if index is None:
            logger.debug("no %r column; leaving it out of the write-back", column)
            continue
        # A daemon cell is one line, so line numbers stay true after the write.
        one_line = table.fmt.representable(" ".join(value.splitlines()))
        current = record.values[index] if index < len(record.values) else None
        if current is None or current.strip() != one_line:
            edits.append(CellEdit(record, index, one_line))
    return edits


def _cell(record: Record, index: int) -> str:
    return record.values[index].strip() if index < len(record.values) else ""


def _cells_by_column(table: _Table, record: Record | None) -> dict[str, str] | None:
    """A row's cells by column name, as they read (None: no such row)."""
    if record is None:
        return None
    return {column: _cell(record, index) for column, index in table.header.index.items()}


def _name(table: _Table, record: Record) -> str:
    """The name in a skipped row's Project cell: that project is still in the list."""
    name = table.header.get(record.values, "Project")
    # Undecodable bytes stay in the file, never in a finding bound for SQLite or a terminal.
    return name.encode("utf-8", "replace").decode() if table.undecodable else name


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


def _swap_in(tmp: Path, path: Path, expected: bytes, ours: bytes) -> int | None:
    """Put ``tmp`` at ``path`` only if ``path`` still holds ``expected`` and nobody is writing it.

    Returns a read-only descriptor of the replaced file (the caller keeps an eye
    on it), or None when nothing was replaced.

    No system call replaces a file only if it is still the one that was read,
    so the check comes after an atomic exchange (Linux renameat2): the file
    swapped out must be the one read, untouched. If it is not, it goes straight
    back, with nothing slower than one stat between the two swaps, because until
    then the path shows our bytes, made from an older read.
    - A save by rename that landed just before the swap: the swapped-out file is
      another inode.
    - A save in place: a read lease, taken before the read and held across the
      swap, makes a program that opens the file for writing wait and shows that
      it tried; the file then goes back before it writes.
    Where no lease can be taken (another user's file), /proc is looked through
    after the swap instead, which keeps our bytes at the path for longer;
    filesystems without an atomic exchange (some network and virtual
    filesystems) fall back to check-then-replace, which has a small window.
    """
    fd = os.open(path, os.O_RDONLY)
    kept = False
    try:
        kept = _swap_checked(tmp, path, fd, expected, ours)
    finally:
        if not kept:
            os.close(fd)
    return fd if kept else None


def _swap_checked(tmp: Path, path: Path, fd: int, expected: bytes, ours: bytes) -> bool:
    """The exchange of ``_swap_in`` while holding a read lease on ``fd`` (the file at ``path``)."""
    with read_lease(fd) as leased:
        if leased is False or _read_fd(fd) != expected:
            return False
        checked = identity_of(os.fstat(fd))
        mine = identity_of(os.stat(tmp))
        if not _exchange(tmp, path):
            os.replace(tmp, path)
            return True
        if identity_of(os.stat(tmp)) == checked and _untouched(fd, tmp, expected, leased):
            return True
        _exchange(tmp, path)
        # Between the two swaps another save may have come in; it is the newest, so it wins.
        again = identity_of(os.stat(tmp)) != mine or tmp.read_bytes() != ours
        if again:
            _exchange(tmp, path)
    logger.info("%s was saved during write-back; the person's version stays", path)
    return False


def _untouched(fd: int, tmp: Path, expected: bytes, leased: bool | None) -> bool:
    """Whether the swapped-out file was neither opened for writing nor changed since it was read."""
    if leased:
        return not lease_broken(fd)
    return _read_fd(fd) == expected and not is_being_written(fd, tmp)


def _read_fd(fd: int) -> bytes:
    return os.pread(fd, os.fstat(fd).st_size, 0)

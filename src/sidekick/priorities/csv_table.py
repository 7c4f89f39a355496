"""A CSV tokenizer that remembers where every field sits in the text.

The standard ``csv`` module gives values but not positions, and a write-back
must change a few cells while keeping every other byte: quoting style, line
endings, a BOM, odd spacing. So this module reads the text once into
:class:`Record` objects that carry both the values and the span of each field,
and :func:`replace_cells` rewrites only the spans it is asked to.

It accepts what real tools write (RFC 4180 quoting with commas, quotes and
newlines inside quoted fields; CRLF, LF or lone CR line endings) and recovers
from what they should not write: a stray quote or an unterminated quoted field
becomes a problem on that record, and the following records are still read.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

BOM = "\ufeff"
# What Excel, LibreOffice and Google Sheets separate fields with, on any locale.
DELIMITERS = (",", ";", "\t")

_EOL = re.compile(r"\r\n|\n|\r")
_QUOTED = re.compile(r'"((?:[^"]++|"")*+)"')


@functools.cache
def _bare(delimiter: str) -> re.Pattern[str]:
    return re.compile(f"[^{re.escape(delimiter)}\r\n]*")


@functools.cache
def _needs_quotes(delimiter: str) -> re.Pattern[str]:
    return re.compile(f'["{re.escape(delimiter)}\r\n]|^\\s|\\s$')


@dataclass
class Record:
    """One CSV record: its first line number, where it sits, its values.

    ``spans`` (where each field sits in the text) is filled only by the
    careful scanner; :func:`field_spans` computes it on demand for the few
    records a write-back edits.
    """

    line: int
    start: int
    end: int
    values: list[str]
    spans: list[tuple[int, int]] | None = None
    problems: list[tuple[int, str]] = field(default_factory=list)
    delimiter: str = ","


def tokenize(text: str, delimiter: str = ",") -> list[Record]:
    """Split the text into records; a BOM at the start is not part of any field.

    Well-formed files are read by the C ``csv`` module; a file it rejects in
    strict mode is read again by the careful scanner, which reports each
    problem on its record and carries on with the next.
    """
    pos = len(BOM) if text.startswith(BOM) else 0
    try:
        return _read_well_formed(text, pos, delimiter)
    except csv.Error:
        return _read_carefully(text, pos, delimiter)


def _read_well_formed(text: str, pos: int, delimiter: str) -> list[Record]:
    eols = [(m.start(), m.end()) for m in _EOL.finditer(text, pos)]
    starts = [pos, *(end for _, end in eols)]
    reader = csv.reader(io.StringIO(text[pos:], newline=""), strict=True, delimiter=delimiter)
    records = []
    first = 1
    for values in reader:
        last = reader.line_num
        end = eols[last - 1][0] if last - 1 < len(eols) else len(text)
        records.append(Record(first, starts[first - 1], end, values or [""], delimiter=delimiter))
        first = last + 1
    return records


def _read_carefully(text: str, pos: int, delimiter: str) -> list[Record]:
    records: list[Record] = []
    line = 1
    while pos < len(text):
        record, next_pos = _read_record(text, pos, line, delimiter)
        records.append(record)
        line += _count_line_breaks(text, pos, next_pos)
        pos = next_pos
    return records


def _count_line_breaks(text: str, start: int, end: int) -> int:
    return len(_EOL.findall(text, start, end))


def _read_record(text: str, pos: int, line: int, delimiter: str) -> tuple[Record, int]:
    eol = _EOL.search(text, pos)
    content_end = eol.start() if eol else len(text)
    next_pos = eol.end() if eol else content_end
    content = text[pos:content_end]
    if '"' not in content:
        values = content.split(delimiter)
        return Record(line, pos, content_end, values, delimiter=delimiter), next_pos
    if content.count('"') % 2 == 0:
        strict = _strict_values(content, delimiter)
        if strict is not None:
            return Record(line, pos, content_end, strict, delimiter=delimiter), next_pos
    return _read_quoted_record(text, pos, line, delimiter)


def _strict_values(content: str, delimiter: str) -> list[str] | None:
    """A one-line record with well-formed quoting, parsed in C; None if it is not well formed."""
    try:
        return next(csv.reader([content], strict=True, delimiter=delimiter))
    except (csv.Error, StopIteration):
        return None


def field_spans(text: str, record: Record) -> list[tuple[int, int]]:
    """Where each field of the record sits in the text (computed once, then kept)."""
    if record.spans is None:
        found = _read_quoted_record(text, record.start, record.line, record.delimiter)[0]
        record.spans = found.spans
    assert record.spans is not None
    return record.spans


def _read_quoted_record(text: str, pos: int, line: int, delimiter: str) -> tuple[Record, int]:
    record = Record(line, pos, pos, [], [], delimiter=delimiter)
    spans: list[tuple[int, int]] = []
    record.spans = spans
    while True:
        pos = _read_field(text, pos, record)
        if pos < len(text) and text[pos] == delimiter:
            pos += 1
            continue
        record.end = pos
        eol = _EOL.match(text, pos)
        return record, eol.end() if eol else pos


def _read_field(text: str, pos: int, record: Record) -> int:
    """Append the field at pos to the record; return where it ends."""
    index = len(record.values)
    bare = _bare(record.delimiter)
    if pos >= len(text) or text[pos] != '"':
        end = bare.match(text, pos).end()  # type: ignore[union-attr]
        record.values.append(text[pos:end])
        _spans(record).append((pos, end))
        return end
    quoted = _QUOTED.match(text, pos)
    if quoted is None:
        end = bare.match(text, pos).end()  # type: ignore[union-attr]
        record.problems.append((index, "quoted field is never closed"))
        record.values.append(text[pos + 1 : end])
        _spans(record).append((pos, end))
        return end
    value = quoted.group(1).replace('""', '"')
    end = quoted.end()
    if end < len(text) and text[end] not in (record.delimiter, "\r", "\n"):
        tail_end = bare.match(text, end).end()  # type: ignore[union-attr]
        record.problems.append((index, "text after the closing quote"))
        value += text[end:tail_end]
        end = tail_end
    record.values.append(value)
    _spans(record).append((pos, end))
    return end


def _spans(record: Record) -> list[tuple[int, int]]:
    assert record.spans is not None
    return record.spans


def encode_field(value: str, was_quoted: bool, delimiter: str = ",") -> str:
    """A cell's text as CSV: quoted when the old cell was or the value needs it."""
    if was_quoted or _needs_quotes(delimiter).search(value):
        return '"' + value.replace('"', '""') + '"'
    return value


@dataclass(frozen=True)
class CellEdit:
    """Set field ``index`` of ``record`` to ``value``."""

    record: Record
    index: int
    value: str


def _edit_to_splice(text: str, edit: CellEdit) -> tuple[int, int, str]:
    start, end = field_spans(text, edit.record)[edit.index]
    was_quoted = end > start and text[start] == '"'
    return start, end, encode_field(edit.value, was_quoted, edit.record.delimiter)


def replace_cells(text: str, edits: Iterable[CellEdit]) -> str:
    """The text with only the edited cells changed; every other character kept.

    Edits that pad the same short record are merged so each record grows once,
    to its widest edit.
    """
    splices = _merge_padding(text, list(edits))
    pieces: list[str] = []
    cursor = 0
    for start, end, replacement in sorted(splices, key=lambda s: (s[0], s[1])):
        pieces.append(text[cursor:start])
        pieces.append(replacement)
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def _merge_padding(text: str, edits: list[CellEdit]) -> list[tuple[int, int, str]]:
    """In-span edits become splices; edits past a record's end become one padding splice."""
    splices: list[tuple[int, int, str]] = []
    padding: dict[int, dict[int, str]] = {}
    records: dict[int, Record] = {}
    for edit in edits:
        if edit.index < len(field_spans(text, edit.record)):
            splices.append(_edit_to_splice(text, edit))
        else:
            padding.setdefault(id(edit.record), {})[edit.index] = edit.value
            records[id(edit.record)] = edit.record
    for key, cells in padding.items():
        record = records[key]
        width = len(field_spans(text, record))
        extra = [""] * (max(cells) - width + 1)
        for index, value in cells.items():
            extra[index - width] = value
        delimiter = record.delimiter
        tail = "".join(delimiter + encode_field(v, False, delimiter) for v in extra)
        splices.append((record.end, record.end, tail))
    return splices

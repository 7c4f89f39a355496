"""How a CSV file is written: its text encoding and its field delimiter.

Excel, LibreOffice and Google Sheets write CSV differently by locale and menu
entry: UTF-8 with or without a BOM ("CSV UTF-8"), Windows-1252 (Windows
Excel's plain "CSV"), UTF-16 with a BOM and tabs ("Unicode text"), and
semicolons wherever the comma is the decimal separator. The file is read in
its own format and written back in it, so every byte the daemon does not mean
to change stays as it was.

Bytes that are not text in the detected encoding are kept as lone surrogates
(``surrogateescape`` / ``surrogatepass``): they round-trip byte for byte, and
:func:`has_undecodable` lets the reader refuse the rows that hold them.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

from sidekick.priorities.csv_table import BOM, DELIMITERS

UTF8 = "utf-8"
CP1252 = "cp1252"
UTF16_LE = "utf-16-le"
UTF16_BE = "utf-16-be"

_BOMS = (
    (b"\xef\xbb\xbf", UTF8),
    (b"\xff\xfe", UTF16_LE),
    (b"\xfe\xff", UTF16_BE),
)
_NAMES = {UTF8: "UTF-8", CP1252: "Windows-1252", UTF16_LE: "UTF-16", UTF16_BE: "UTF-16"}
_SURROGATE = re.compile("[\ud800-\udfff]")
_SEP_LINE = re.compile(r"sep=(.)\r?\n?$")


@dataclass(frozen=True)
class CsvFormat:
    """The encoding and delimiter one read found; write-back uses the same."""

    encoding: str = UTF8
    delimiter: str = ","

    @property
    def encoding_name(self) -> str:
        return _NAMES.get(self.encoding, self.encoding)

    @property
    def _errors(self) -> str:
        # UTF-16's undecodable units are whole code units, which surrogatepass keeps.
        return "surrogatepass" if self.encoding in (UTF16_LE, UTF16_BE) else "surrogateescape"

    def decode(self, raw: bytes) -> str:
        """The text; a BOM stays in it as U+FEFF so writing it back keeps it."""
        return raw.decode(self.encoding, self._errors)

    def encode(self, text: str) -> bytes:
        return text.encode(self.encoding, self._errors)

    def representable(self, value: str) -> str:
        """The value as this encoding can hold it (a cp1252 file cannot hold every character)."""
        if value.isascii():
            return value
        return value.encode(self.encoding, "replace").decode(self.encoding)


def detect_encoding(raw: bytes) -> str:
    """BOM first; then UTF-8 if it is UTF-8 (or mostly: a few stray bytes); else Windows-1252."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return encoding
    utf16 = _bomless_utf16(raw)
    if utf16 is not None:
        return utf16
    try:
        raw.decode(UTF8)
    except UnicodeDecodeError:
        return UTF8 if _has_utf8_sequences(raw) else CP1252
    return UTF8


def _bomless_utf16(raw: bytes) -> str | None:
    """UTF-16 without a BOM shows as a NUL beside every ASCII character of the header."""
    head = raw[:200]
    if len(head) < 4 or len(head) % 2 or head.count(0) < len(head) // 3:
        return None
    if head[1::2].count(0) == len(head) // 2:
        return UTF16_LE
    if head[0::2].count(0) == len(head) // 2:
        return UTF16_BE
    return None


def _has_utf8_sequences(raw: bytes) -> bool:
    """Whether any non-ASCII byte forms valid UTF-8: then a stray byte is a bad row, not cp1252."""
    text = raw.decode(UTF8, "surrogateescape")
    return any(ord(c) > 0x7F and not 0xDC80 <= ord(c) <= 0xDCFF for c in text)


def sniff_delimiter(text: str, known: frozenset[str]) -> tuple[str, int]:
    """The delimiter of the header line, and how many header lines precede it (a sep= line).

    The header is split with each delimiter; the one that yields the most known
    column names wins, and a comma on a tie.
    """
    body = text[len(BOM) :] if text.startswith(BOM) else text
    first = body.split("\n", 1)[0].split("\r", 1)[0]
    hint = _SEP_LINE.match(first)
    if hint is not None:
        return hint.group(1), 1
    best, score = ",", -1
    for delimiter in DELIMITERS:
        cells = next(csv.reader([first], delimiter=delimiter), [])
        found = sum(" ".join(c.split()).casefold() in known for c in cells)
        if found > score:
            best, score = delimiter, found
    return best, 0


def has_undecodable(values: list[str]) -> bool:
    return any(_SURROGATE.search(value) for value in values)


def describe(delimiter: str) -> str:
    return {",": "commas", ";": "semicolons", "\t": "tabs"}.get(delimiter, repr(delimiter))

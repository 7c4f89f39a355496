"""``prod logs`` output: ``service  | text`` padded to the widest service, stderr apart."""

from __future__ import annotations

import io
import json

from sidekick.containers.records import FRAME_HEADER
from sidekick.production.logs import LogLine, LogWriter

T1, T2, T3 = (
    "2026-11-30T11:00:01.000000000Z",
    "2026-11-30T11:00:02.000000000Z",
    "2026-11-30T11:00:03.000000000Z",
)


def _write(lines: list[LogLine], **options: bool) -> tuple[bytes, bytes]:
    out, err = io.BytesIO(), io.BytesIO()
    writer = LogWriter(
        out, err, timestamps=options.get("timestamps", False), as_json=options.get("as_json", False)
    )
    for line in lines:
        writer.write(line)
    return out.getvalue(), err.getvalue()


LINES = [
    LogLine(T1, "web", "stdout", b"up\n"),
    LogLine(T2, "worker", "stderr", b"oops"),
    LogLine(T3, "web", "stdout", b"served\n"),
]


def test_lines_carry_their_service_padded_to_the_widest_seen_and_stderr_goes_apart() -> None:
    out, err = _write(LINES)
    assert out == b"web  | up\nweb     | served\n"
    assert err == b"worker  | oops\n"


def test_timestamps_follow_the_prefix() -> None:
    out, _ = _write(LINES[:1], timestamps=True)
    assert out == f"web  | {T1} up\n".encode()


def test_json_lines_hold_every_stream_on_stdout() -> None:
    out, err = _write(LINES, as_json=True)
    records = [json.loads(line) for line in out.splitlines()]
    assert err == b""
    assert records[1] == {"time": T2, "service": "worker", "stream": "stderr", "line": "oops"}
    assert [r["line"] for r in records] == ["up", "oops", "served"]


def _frame(kind: int, text: bytes) -> bytes:
    return FRAME_HEADER.pack(kind, len(text)) + text


def test_one_containers_frames_come_out_whole_whatever_the_blocks_they_arrive_in() -> None:
    # stdout, stderr, a line without its newline, an empty line, an unknown stream (stdout).
    stream = b"".join(
        [
            _frame(1, b"up\n"),
            _frame(2, b"oops\n"),
            _frame(1, b"no newline"),
            _frame(1, b"\n"),
            _frame(9, b"other\n"),
        ]
    )
    for block in range(1, len(stream) + 1):
        out, err = io.BytesIO(), io.BytesIO()
        writer = LogWriter(out, err, timestamps=False, as_json=False)
        pieces = [stream[i : i + block] for i in range(0, len(stream), block)]
        writer.write_frames("web", pieces)
        assert out.getvalue() == b"web  | up\nweb  | no newline\nweb  | \nweb  | other\n", block
        assert err.getvalue() == b"web  | oops\n", block


def test_frames_cut_short_end_with_the_last_whole_line() -> None:
    stream = _frame(1, b"first\n") + _frame(1, b"second\n")
    out = io.BytesIO()
    LogWriter(out, io.BytesIO(), timestamps=False, as_json=False).write_frames("web", [stream[:-3]])
    assert out.getvalue() == b"web  | first\n"

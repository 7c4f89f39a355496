"""``prod logs`` output: ``service  | text`` padded to the widest service, stderr apart."""

from __future__ import annotations

import io
import json

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

"""A multiplexed log stream parses to the same lines whatever the reads' sizes."""

from __future__ import annotations

import io

from sidekick.containers.records import FRAME_HEADER
from sidekick.containers.scope import timestamped_frames

LINES = [
    (1, b"2026-11-30T11:00:00.000000001Z first line\n"),
    (2, b"2026-11-30T11:00:00.000000002Z an error\n"),
    (1, b"2026-11-30T11:00:00.000000003Z \n"),
    (1, b"2026-11-30T11:00:00.000000004Z no newline at the end"),
    (9, b"2026-11-30T11:00:00.000000005Z an unknown stream is stdout\n"),
]
STREAM = b"".join(FRAME_HEADER.pack(kind, len(data)) + data for kind, data in LINES)
EXPECTED = [
    ("2026-11-30T11:00:00.000000001Z", "stdout", b"first line\n"),
    ("2026-11-30T11:00:00.000000002Z", "stderr", b"an error\n"),
    ("2026-11-30T11:00:00.000000003Z", "stdout", b"\n"),
    ("2026-11-30T11:00:00.000000004Z", "stdout", b"no newline at the end"),
    ("2026-11-30T11:00:00.000000005Z", "stdout", b"an unknown stream is stdout\n"),
]


def test_frames_split_across_reads_of_any_size_come_out_whole() -> None:
    for block in range(1, len(STREAM) + 2):
        assert list(timestamped_frames(io.BytesIO(STREAM).read, block)) == EXPECTED, block


def test_a_stream_cut_inside_a_frame_ends_with_the_last_whole_frame() -> None:
    cut = STREAM[: len(STREAM) - 5]
    assert list(timestamped_frames(io.BytesIO(cut).read, 7)) == EXPECTED[:-1]

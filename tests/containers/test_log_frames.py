"""A multiplexed log stream parses to the same lines whatever the reads' sizes."""

from __future__ import annotations

import io

import pytest

from sidekick.containers.records import FRAME_HEADER
from sidekick.containers.scope import timestamped_frames
from sidekick.containers.wire import unchunked

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


def _chunked(data: bytes, size: int) -> bytes:
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
    return body + b"0\r\n\r\n"


class _Reads:
    """``read1`` of a socket file: at most ``block`` bytes, whatever was asked."""

    def __init__(self, data: bytes, block: int) -> None:
        self.data, self.block = io.BytesIO(data), block

    def read(self, size: int) -> bytes:
        return self.data.read(min(size, self.block))


def test_a_chunked_body_comes_out_whole_whatever_the_chunks_and_reads() -> None:
    for chunk in (1, 7, 50, len(STREAM)):
        body = _chunked(STREAM, chunk)
        for block in (1, 2, 3, 5, 64, len(body)):
            data = b"".join(unchunked(_Reads(body, block).read, block))
            assert data == STREAM, (chunk, block)


def test_a_chunked_body_cut_short_gives_the_chunks_that_came_whole_then_says_it_is_cut() -> None:
    body = _chunked(STREAM, 10)
    data = b""
    with pytest.raises(ConnectionError, match="closed the connection before the last chunk"):
        for block in unchunked(_Reads(body[:45], 8).read):
            data += block
    assert data == STREAM[:30]  # three chunks of 15 bytes (a\r\n, ten bytes, \r\n)

"""A followed log of several containers whose stream is cut: the others keep coming, the cut
is said on stderr when it happens, and the command ends in failure (sidekick.production.logs).

An engine that cuts one stream on purpose cannot be had from a real one, so a fake engine
on a real Unix socket answers each container's log request; the reader, the scope and the
merge under test are the real ones, reached as ``prod logs`` reaches them.
"""

from __future__ import annotations

import io
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidekick.containers.engine import ContainerEngine
from sidekick.containers.records import FRAME_HEADER, ContainerInfo
from sidekick.containers.scope import COMPOSE_PROJECT, COMPOSE_SERVICE, Scope, ScopedEngine
from sidekick.containers.settings import ContainersConfig
from sidekick.production.errors import ProductionError
from sidekick.production.logs import LogQuery, LogWriter, copy_logs
from tests.fake_engine import FakeEngine

STAMP = "2026-11-30T11:00:0{}.000000000Z"


def frames(*lines: tuple[int, str]) -> bytes:
    """Multiplexed frames with timestamps, as the engine sends a log: (second, text) each."""
    out = b""
    for second, text in lines:
        payload = f"{STAMP.format(second)} {text}\n".encode()
        out += FRAME_HEADER.pack(1, len(payload)) + payload
    return out


def chunked(body: bytes, *, last_chunk: bool) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"%x\r\n%s\r\n" % (len(body), body)
    return head + chunk + (b"0\r\n\r\n" if last_chunk else b"")


def answering(path: Path, answers: dict[str, bytes]) -> None:
    """A fake engine that answers ``GET .../containers/<id>/logs`` with that container's
    bytes, then hangs up."""

    def answer(request: bytes) -> bytes:
        found = re.search(rb"/containers/([^/]+)/logs", request)
        return answers[found.group(1).decode()] if found else b""

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    FakeEngine(listener, answer)


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # A Unix socket's path is limited to 107 bytes: pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="sk-cut-") as directory:
        yield Path(directory)


def container(service: str) -> ContainerInfo:
    labels = {COMPOSE_PROJECT: "shop", COMPOSE_SERVICE: service}
    return ContainerInfo(id=service, name=f"shop-{service}-1", state="running", labels=labels)


def follow(socket_dir: Path, answers: dict[str, bytes]) -> tuple[bytes, bytes, Exception | None]:
    answering(socket_dir / "engine.sock", answers)
    # A fixed API version: no /_ping first.
    address = f"unix://{socket_dir / 'engine.sock'}"
    settings = ContainersConfig(docker_host=address, api_version="1.41", timeout=10)
    engine = ContainerEngine(settings)
    scoped = ScopedEngine(engine, Scope(projects=frozenset({"shop"})), "Shop")
    out, err = io.BytesIO(), io.BytesIO()
    writer = LogWriter(out, err, timestamps=False, as_json=False)
    rows = [container(s) for s in answers]
    failed = None
    try:
        copy_logs(scoped, rows, LogQuery(follow=True), writer)
    except ProductionError as exc:
        failed = exc
    finally:
        engine.close()
    return out.getvalue(), err.getvalue(), failed


def lines(out: bytes) -> list[bytes]:
    """The lines in order of service, without the padding (which follows arrival order)."""
    return sorted(re.sub(rb" +\| ", b" | ", line) for line in out.splitlines())


def test_a_cut_stream_is_said_and_fails_the_command_while_the_others_are_whole(
    socket_dir: Path,
) -> None:
    answers = {
        "web": chunked(frames((1, "web up"), (3, "web served")), last_chunk=True),
        "worker": chunked(frames((2, "worker started")), last_chunk=False),
    }
    out, err, failed = follow(socket_dir, answers)
    assert lines(out) == [b"web | web served", b"web | web up", b"worker | worker started"]
    assert b"sidekick: worker: log cut short: " in err
    assert b"closed the connection before the last chunk" in err
    assert failed is not None and "the log of worker was cut short" in str(failed)


def test_streams_that_end_whole_end_the_command_without_a_word(socket_dir: Path) -> None:
    answers = {
        "web": chunked(frames((1, "web up")), last_chunk=True),
        "worker": chunked(frames((2, "worker started")), last_chunk=True),
    }
    out, err, failed = follow(socket_dir, answers)
    assert lines(out) == [b"web | web up", b"worker | worker started"]
    assert err == b""
    assert failed is None

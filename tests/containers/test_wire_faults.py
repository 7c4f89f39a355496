"""An engine that answers badly is an error that says what it sent, never a traceback nor a
cut answer taken for a whole one (sidekick.containers.wire).

A fake engine on a real Unix socket speaks the bad HTTP; the reader under test is the real
one, reached through ContainerEngine as every command reaches it.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import ContainerError, ErrorCode
from sidekick.containers.settings import ContainersConfig
from sidekick.containers.wire import HEAD_LIMIT, READ_BLOCK
from tests.fake_engine import FakeEngine

INSPECT = "/containers/app/json"
LOGS = "/containers/app/logs"


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # A Unix socket's path is limited to 107 bytes: pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="sk-wire-") as directory:
        yield Path(directory)


def engine_answering(socket_dir: Path, answer: bytes, *, hold: bool = False) -> ContainerEngine:
    """An engine on a Unix socket, read by sidekick.containers.wire."""
    path = socket_dir / "engine.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    FakeEngine(listener, answer, hold=hold)
    return engine_at(f"unix://{path}")


def tcp_engine_answering(answer: bytes) -> ContainerEngine:
    """An engine on TCP, read through docker-py."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    FakeEngine(listener, answer)
    return engine_at(f"tcp://127.0.0.1:{listener.getsockname()[1]}")


def engine_at(url: str) -> ContainerEngine:
    # A fixed API version: no /_ping first, every request gets the bad answer.
    return ContainerEngine(ContainersConfig(docker_host=url, api_version="1.41", timeout=10))


def chunked(*lines: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(lines)


def read_stream(engine: ContainerEngine) -> tuple[bytes, ContainerError | None]:
    """What a log stream gave before it ended, and the error it ended with, if any."""
    body = engine.get_stream("logs", "app", LOGS, {"stdout": 1})
    got = b""
    try:
        while data := body.read(READ_BLOCK):
            got += data
    except ContainerError as exc:
        return got, exc
    finally:
        body.close()
    return got, None


BAD_SIZES = {
    "not hexadecimal": b"zz",
    "negative": b"-5",
    "a bare 0x": b"0x",
    "empty line": b"",
    "not ascii": "\u0663".encode(),
    "bytes of no text": b"\xff\xfe",
}


@pytest.mark.parametrize("size", list(BAD_SIZES.values()), ids=list(BAD_SIZES))
def test_a_chunk_size_that_is_not_a_number_is_an_engine_error_naming_it(
    socket_dir: Path, size: bytes
) -> None:
    answer = chunked(b"2\r\n{}\r\n", size + b"\r\nxx\r\n", b"0\r\n\r\n")
    engine = engine_answering(socket_dir, answer)
    with pytest.raises(ContainerError) as bad:
        engine.get_json("inspect", "app", INSPECT)
    assert bad.value.code is ErrorCode.NETWORK_ERROR
    assert f"chunked answer has a chunk size of {size!r}" in str(bad.value)
    # The same answer to a log: the chunk before it is given, then the error, no traceback.
    got, error = read_stream(engine)
    assert got == b"{}"
    assert error is not None and f"chunk size of {size!r}" in str(error)


@pytest.mark.parametrize("transport", ["unix socket", "tcp through docker-py"])
def test_a_chunked_log_that_ends_before_its_last_chunk_is_an_error_after_what_came(
    socket_dir: Path, transport: str
) -> None:
    answer = chunked(b"6\r\nline 1\r\n", b"6\r\nline 2\r\n", b"6\r\nli")
    if transport == "unix socket":
        engine = engine_answering(socket_dir, answer)
    else:
        engine = tcp_engine_answering(answer)
    got, error = read_stream(engine)
    assert got == b"line 1line 2"
    assert error is not None and "closed the connection before the last chunk" in str(error)


def test_chunk_sizes_with_extensions_and_any_case_are_read(socket_dir: Path) -> None:
    answer = chunked(b"A;name=value\r\n0123456789\r\n", b"1\r\n!\r\n", b"0\r\n\r\n")
    got, error = read_stream(engine_answering(socket_dir, answer))
    assert (got, error) == (b"0123456789!", None)


@pytest.mark.parametrize("hold", [True, False], ids=["engine stalls", "engine hangs up"])
def test_a_head_over_the_limit_is_said_as_such_not_as_no_answer(
    socket_dir: Path, hold: bool
) -> None:
    head = b"HTTP/1.0 200 OK\r\nX-Padding: " + b"a" * (HEAD_LIMIT + 100)
    engine = engine_answering(socket_dir, head, hold=hold)
    with pytest.raises(ContainerError) as bad:
        engine.get_json("inspect", "app", INSPECT)
    message = str(bad.value)
    assert "no end of its head in its first" in message and f"more than {HEAD_LIMIT}" in message
    assert "without an answer" not in message


def test_an_engine_that_hangs_up_in_the_head_says_how_much_came(socket_dir: Path) -> None:
    engine = engine_answering(socket_dir, b"HTTP/1.0 200 OK\r\nContent-Le")
    with pytest.raises(ContainerError) as bad:
        engine.get_json("inspect", "app", INSPECT)
    assert "closed the connection after 27 bytes of its answer's head" in str(bad.value)


def test_an_engine_that_hangs_up_before_answering_says_so(socket_dir: Path) -> None:
    with pytest.raises(ContainerError) as bad:
        engine_answering(socket_dir, b"").get_json("inspect", "app", INSPECT)
    assert "closed the connection without an answer" in str(bad.value)


def counted(length: int, body: bytes) -> bytes:
    return b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (length, body)


LOG = b"".join(b"line %d\n" % i for i in range(1, 20001))


@pytest.mark.parametrize("came", [0, 1, READ_BLOCK, len(LOG) - 1], ids=lambda n: f"{n} bytes")
def test_a_log_shorter_than_its_content_length_is_an_error_after_what_came(
    socket_dir: Path, came: int
) -> None:
    engine = engine_answering(socket_dir, counted(len(LOG), LOG[:came]))
    got, error = read_stream(engine)
    assert got == LOG[:came]
    assert error is not None and error.code is ErrorCode.NETWORK_ERROR
    short = len(LOG) - came
    assert f"{short} bytes short of the answer's {len(LOG)} (Content-Length)" in str(error)


def test_a_json_answer_shorter_than_its_content_length_is_an_error_not_bad_json(
    socket_dir: Path,
) -> None:
    engine = engine_answering(socket_dir, counted(20, b'{"Id": "abc"}'))
    with pytest.raises(ContainerError) as bad:
        engine.get_json("inspect", "app", INSPECT)
    # Reached, so not "cannot reach": what came back is named.
    assert str(bad.value).endswith(
        f"a bad answer from the Docker engine at unix://{socket_dir / 'engine.sock'}:"
        " the engine closed the connection 7 bytes short of the answer's 20 (Content-Length):"
        " the answer is cut"
    )


def test_a_log_of_exactly_its_content_length_is_whole(socket_dir: Path) -> None:
    # The engine keeps the connection open: the length, not the hang-up, ends the body.
    engine = engine_answering(socket_dir, counted(len(LOG), LOG), hold=True)
    assert read_stream(engine) == (LOG, None)


@pytest.mark.parametrize("length", [b"-1", b"ten", b"1e3", "\u0661\u0660".encode()])
def test_a_content_length_that_is_not_a_count_is_an_engine_error(
    socket_dir: Path, length: bytes
) -> None:
    answer = b"HTTP/1.0 200 OK\r\nContent-Length: " + length + b"\r\n\r\n{}"
    with pytest.raises(ContainerError) as bad:
        engine_answering(socket_dir, answer).get_json("inspect", "app", INSPECT)
    assert "gives a Content-Length of" in str(bad.value)

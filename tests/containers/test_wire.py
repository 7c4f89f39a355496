"""Reads over the engine's Unix socket (sidekick.containers.wire) answer as docker-py's do.

An engine on a Unix socket is read directly; any other (here: TCP, through a relay to
the real engine) through docker-py. Both must give the same rows, the same log bytes and
the same errors, and the looks a person runs most must not load docker-py at all.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest
from docker.api.client import APIClient

from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import ContainerError, ErrorCode
from sidekick.containers.settings import ContainersConfig
from tests.containers.helpers import BASE_IMAGE, SESSION, TEST_LABEL, engine_socket_path
from tests.containers.proxy import SocketProxy
from tests.polling import wait_until

LINES = 3000


class TcpRelay(SocketProxy):
    """The engine's socket offered on 127.0.0.1, so clients reach it as a TCP engine."""

    def start(self) -> Self:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"


@pytest.fixture
def printer(docker_api: APIClient) -> Iterator[str]:
    """A container that printed numbered lines on stdout and every hundredth on stderr."""
    script = (
        f"for i in $(seq 1 {LINES}); do echo line $i; "
        '[ $((i % 100)) -eq 0 ] && echo "warn $i" >&2; done; true'
    )
    created = docker_api.create_container(
        BASE_IMAGE, ["sh", "-c", script], labels={TEST_LABEL: SESSION}
    )
    docker_api.start(created["Id"])
    try:
        docker_api.wait(created["Id"], timeout=60)
        yield str(created["Id"])
    finally:
        docker_api.remove_container(created["Id"], force=True)


@pytest.fixture
def engines(
    tmp_path: Path, docker_api: APIClient
) -> Iterator[tuple[ContainerEngine, ContainerEngine]]:
    """The same engine read over its socket and, through a TCP relay, with docker-py."""
    relay = TcpRelay(tmp_path / "unused.sock", engine_socket_path()).start()
    direct = ContainerEngine(ContainersConfig(docker_host=f"unix://{engine_socket_path()}"))
    sdk = ContainerEngine(ContainersConfig(docker_host=relay.url))
    try:
        yield direct, sdk
    finally:
        direct.close()
        sdk.close()
        relay.stop()


def _read_all(engine: ContainerEngine, path: str, params: dict[str, object]) -> bytes:
    body = engine.get_stream("logs", "", path, params)
    try:
        return b"".join(iter(lambda: body.read(1 << 16), b""))
    finally:
        body.close()


def test_a_list_and_an_inspect_give_what_docker_py_gives(
    engines: tuple[ContainerEngine, ContainerEngine], printer: str
) -> None:
    direct, sdk = engines
    filters = {"label": [f"{TEST_LABEL}={SESSION}"], "id": [printer]}
    params = {"all": 1, "filters": json.dumps(filters)}
    (row,) = direct.get_json("list", "", "/containers/json", params)
    (same,) = sdk.get_json("list", "", "/containers/json", params)
    assert row["Id"] == printer and row["State"] == "exited"
    # All but the status text, which tells the time since it exited ("2 seconds ago").
    assert {**row, "Status": ""} == {**same, "Status": ""}
    inspected = direct.get_json("inspect", "", f"/containers/{printer}/json")
    assert inspected["Id"] == printer and inspected["State"]["Status"] == "exited"
    assert inspected == sdk.get_json("inspect", "", f"/containers/{printer}/json")


def test_a_log_streams_the_same_bytes_over_the_socket_and_through_docker_py(
    engines: tuple[ContainerEngine, ContainerEngine], printer: str
) -> None:
    direct, sdk = engines
    path = f"/containers/{printer}/logs"
    params: dict[str, object] = {"stdout": 1, "stderr": 1, "tail": "all"}
    data = _read_all(direct, path, params)
    assert data == _read_all(sdk, path, params)
    # 8-byte header and the line, for every line on stdout and every warning on stderr.
    assert len(data) == sum(8 + len(f"line {i}\n") for i in range(1, LINES + 1)) + sum(
        8 + len(f"warn {i}\n") for i in range(100, LINES + 1, 100)
    )


def test_a_missing_container_or_image_is_not_found_in_the_engine_words(
    engines: tuple[ContainerEngine, ContainerEngine],
) -> None:
    for engine in engines:
        with pytest.raises(ContainerError) as missing:
            engine.get_json("inspect", "App", "/containers/sidekick-no-such-container/json")
        assert missing.value.code is ErrorCode.NOT_FOUND
        assert "No such container: sidekick-no-such-container" in str(missing.value)
        with pytest.raises(ContainerError) as image:
            engine.get_json("images", "App", "/images/sidekick-no-such-image:0/json")
        assert image.value.code is ErrorCode.IMAGE_NOT_FOUND
        assert "sidekick never pulls" in str(image.value)


def test_an_engine_that_is_not_there_is_a_network_error_naming_its_socket(
    tmp_path: Path,
) -> None:
    socket_path = tmp_path / "no-engine.sock"
    engine = ContainerEngine(ContainersConfig(docker_host=f"unix://{socket_path}"))
    with pytest.raises(ContainerError) as gone:
        engine.get_json("list", "App", "/containers/json")
    assert gone.value.code is ErrorCode.NETWORK_ERROR
    assert f"cannot reach the Docker engine at unix://{socket_path}" in str(gone.value)
    assert "No such file or directory" in str(gone.value)


def test_an_engine_that_comes_back_is_read_again_without_a_new_engine_object(
    tmp_path: Path, docker_api: APIClient
) -> None:
    proxy = SocketProxy(tmp_path / "engine.sock", engine_socket_path())
    engine = ContainerEngine(ContainersConfig(docker_host=proxy.url))
    with pytest.raises(ContainerError) as gone:
        engine.get_json("list", "", "/containers/json")
    assert gone.value.code is ErrorCode.NETWORK_ERROR
    proxy.start()
    try:
        assert isinstance(engine.get_json("list", "", "/containers/json"), list)
    finally:
        proxy.stop()


def test_closing_a_followed_log_from_another_thread_ends_its_reader(
    docker_api: APIClient,
) -> None:
    created = docker_api.create_container(
        BASE_IMAGE, ["sh", "-c", "echo ready; sleep 600"], labels={TEST_LABEL: SESSION}
    )
    docker_api.start(created["Id"])
    engine = ContainerEngine()
    chunks: list[bytes] = []
    try:
        params = {"stdout": 1, "stderr": 1, "follow": 1, "tail": "all"}
        body = engine.get_stream("logs", "", f"/containers/{created['Id']}/logs", params)

        def read() -> None:
            with contextlib.suppress(OSError):  # a read racing the close sees it closed
                chunks.extend(iter(lambda: body.read(1 << 16), b""))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        wait_until(lambda: b"ready" in b"".join(chunks), timeout=30, what="the first line")
        body.close()
        reader.join(timeout=10)
        assert not reader.is_alive(), "a closed stream ends the thread reading it"
    finally:
        engine.close()
        docker_api.remove_container(created["Id"], force=True)


def test_prod_status_and_logs_do_not_load_docker_py(tmp_path: Path) -> None:
    production = tmp_path / "production"
    production.mkdir()
    (production / "compose.yaml").write_text(f"services:\n  web:\n    image: {BASE_IMAGE}\n")
    (tmp_path / "workspace").mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"daemon:\n  state_dir: {tmp_path / 'state'}\nprojects:\n  App:\n"
        f"    directory: {tmp_path / 'workspace'}\n    production:\n"
        f"      path: {production}\n      compose_project: {SESSION}-never-up\n"
    )
    for command in (["status", "App"], ["logs", "App"]):
        look = (
            "import sys\nfrom sidekick.cli import main\n"
            f"code = main(['prod', *{command!r}, '--config', {str(config)!r}])\n"
            "print(code, sorted({m.split('.')[0] for m in sys.modules} & "
            "{'docker', 'requests', 'urllib3', 'http'}))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", look], capture_output=True, text=True, check=True, timeout=60
        )
        # No containers of that project: a clear answer, and still no docker-py.
        assert done.stdout.splitlines()[-1] == "1 []", (command, done.stdout, done.stderr)

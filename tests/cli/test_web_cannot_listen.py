"""``sidekick web`` says in one line which address it cannot listen on and what chooses it."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def web(config: Path, port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    secret = config.parent / "dashboard.secret"
    secret.write_text("admin:a-long-enough-secret\n")
    config.write_text(
        config.read_text() + f"web: {{secret_file: {secret}, port: {port}}}\n", encoding="utf-8"
    )
    argv = [sys.executable, "-m", "sidekick", "web", *extra, "--config", str(config)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("sidekick: ")]
    # Nothing claims the dashboard is served.
    assert "dashboard on" not in done.stderr
    return line


def test_a_taken_port_names_the_address_and_the_web_port_setting(
    config: Path, taken_port: int
) -> None:
    line = error_line(web(config, taken_port))
    assert line == (
        f"sidekick: {config}: web.port: cannot listen on 127.0.0.1:{taken_port}:"
        " address already in use; choose another port with web.port (or SIDEKICK_WEB__PORT)"
    )


def test_a_taken_port_given_on_the_command_line_names_the_option(
    config: Path, taken_port: int
) -> None:
    line = error_line(web(config, 8080, "--port", str(taken_port)))
    assert f"cannot listen on 127.0.0.1:{taken_port}: address already in use" in line
    assert line.endswith("choose another port with --port")


@pytest.mark.parametrize(
    ("host", "why"),
    [("192.0.2.1", "cannot assign requested address"), ("no-such-host.invalid", "")],
)
def test_a_host_that_is_not_this_machine_names_the_web_host_setting(
    host: str, why: str, config: Path, taken_port: int
) -> None:
    line = error_line(web(config, taken_port, "--host", host))
    assert f"web.host: cannot listen on {host}:{taken_port}: {why}" in line
    assert line.endswith("choose an address of this machine with --host")

"""Start the mock Claude API as a subprocess on an ephemeral 127.0.0.1 port.

Reusable by any test that needs an Anthropic-compatible endpoint::

    with running_mock(scenarios_path, api_keys=["sk-a"], budget_usd=0.5) as base_url:
        ...  # ANTHROPIC_BASE_URL=base_url

Keyword options become the mock's command-line options: ``budget_usd=0.5`` is
``--budget-usd 0.5``; a list repeats the option (``api_keys=["a", "b"]`` is
``--api-key a --api-key b``); ``key_budgets={"k": 1.0}`` is ``--key-budget k=1.0``.
:func:`mock_server` also gives the process and its log file.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

START_TIMEOUT = 15.0
READY_PREFIX = "mock_claude listening on "
_PLURAL_FLAGS = {"api_keys": "--api-key", "key_budgets": "--key-budget"}


@dataclass(frozen=True)
class MockServer:
    base_url: str
    process: subprocess.Popen[str]
    log_path: Path

    def log(self) -> str:
        """Everything the mock logged so far (one line per request)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def mock_arguments(scenarios_path: Path | None, opts: Mapping[str, Any]) -> list[str]:
    argv = [sys.executable, "-m", "sidekick.mock_claude", "--host", "127.0.0.1", "--port", "0"]
    if scenarios_path is not None:
        argv += ["--scenarios", str(scenarios_path)]
    for name, value in opts.items():
        argv += _option(name, value)
    return argv


def _option(name: str, value: Any) -> list[str]:
    flag = _PLURAL_FLAGS.get(name, "--" + name.replace("_", "-"))
    if isinstance(value, Mapping):
        return [part for k, v in value.items() for part in (flag, f"{k}={v}")]
    if isinstance(value, list | tuple):
        return [part for item in value for part in (flag, str(item))]
    return [flag, str(value)]


def _await_ready(process: subprocess.Popen[str], log_path: Path) -> str:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not selector.select(timeout=0.1):
            if process.poll() is not None:
                break
            continue
        line = process.stdout.readline()
        if line.startswith(READY_PREFIX):
            return line[len(READY_PREFIX) :].strip()
        if not line and process.poll() is not None:
            break
    log = log_path.read_text(encoding="utf-8", errors="replace")
    raise RuntimeError(f"mock_claude did not start (exit {process.poll()}):\n{log}")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


@contextmanager
def mock_server(scenarios_path: Path | None = None, **opts: Any) -> Iterator[MockServer]:
    """The mock running in a subprocess until the block ends."""
    with tempfile.TemporaryDirectory(prefix="mock-claude-") as folder:
        log_path = Path(folder) / "mock.log"
        # The caller's MOCK_CLAUDE_* settings must not change what a test asked for.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOCK_CLAUDE_")}
        env["PYTHONUNBUFFERED"] = "1"
        with log_path.open("w", encoding="utf-8") as log:
            process = subprocess.Popen(
                mock_arguments(scenarios_path, opts),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
            )
        try:
            yield MockServer(_await_ready(process, log_path), process, log_path)
        finally:
            _stop(process)


@contextmanager
def running_mock(scenarios_path: Path | None = None, **opts: Any) -> Iterator[str]:
    """The base URL of a mock running in a subprocess until the block ends."""
    with mock_server(scenarios_path, **opts) as server:
        yield server.base_url

"""Small agents (shell scripts), launch specs and polling for the runner tests."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from sidekick.runners.base import LaunchSpec

T = TypeVar("T")

# Waits until a release file appears, then exits with the number written in it.
WAIT_FOR_RELEASE = """
while [ ! -e "$RELEASE" ]; do sleep 0.02; done
exit "$(cat "$RELEASE")"
"""


def write_script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)
    return path


def make_spec(
    root: Path,
    key: str,
    argv: tuple[str, ...],
    *,
    run_id: str = "",
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> LaunchSpec:
    run = run_id or f"run-{key}"
    return LaunchSpec(
        key=key,
        project=key.removeprefix("sidekick-"),
        run_id=run,
        argv=argv,
        cwd=cwd or root,
        log_path=root / "logs" / f"{run}.log",
        env=dict(env or {}),
    )


def release(path: Path, exit_code: int) -> None:
    """Let a WAIT_FOR_RELEASE agent end; renamed into place so it never reads half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(str(exit_code), encoding="ascii")
    os.replace(temporary, path)


def wait_for(probe: Callable[[], T | None], timeout: float = 10.0, what: str = "") -> T:
    """Poll until probe returns something other than None (or False); fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}")
        time.sleep(0.02)


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies nobody reaped do not count)."""
    listing = subprocess.run(
        ["ps", "-A", "-o", "pgid=,stat="], capture_output=True, text=True, check=True
    ).stdout
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == str(pgid) and not fields[1].startswith("Z"):
            return True
    return False


def read_pid(path: Path) -> int:
    """The pid an agent wrote, once it has written all of it."""
    return wait_for(lambda: _complete_pid(path), what=f"a pid in {path}")


def _complete_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    return int(text) if text.endswith("\n") else None

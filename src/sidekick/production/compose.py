"""``docker compose`` for build and up: an argument list with ``-p`` and ``-f``, never a shell."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections import deque
from typing import TextIO

from sidekick.production.settings import ComposeProject

logger = logging.getLogger(__name__)

COMPOSE_TIMEOUT = 1800.0
KEPT_LINES = 20


class ComposeFailed(Exception):
    """``docker compose`` exited non-zero; ``output`` is its last lines."""

    def __init__(self, verb: str, code: int, output: str) -> None:
        super().__init__(f"docker compose {verb} exited {code}: {output}")


def compose_argv(project: ComposeProject, *args: str) -> list[str]:
    return ["docker", "compose", "-p", project.name, "-f", str(project.file), *args]


def run_compose(project: ComposeProject, *args: str, progress: TextIO | None = None) -> None:
    """Run it, showing its output as it comes (build progress); the last lines explain a failure."""
    shown = progress or sys.stderr
    tail: deque[str] = deque(maxlen=KEPT_LINES)
    argv = compose_argv(project, *args)
    logger.info("running %s", argv)
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        cwd=project.file.parent,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            shown.write(line)
            tail.append(line.rstrip())
        code = process.wait(timeout=COMPOSE_TIMEOUT)
    if code != 0:
        raise ComposeFailed(args[0], code, " / ".join(tail))

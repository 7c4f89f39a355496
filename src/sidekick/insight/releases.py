"""A project's last release: its newest git tag, for the image-older-than-release check."""

from __future__ import annotations

import logging
import subprocess
from datetime import datetime
from pathlib import Path

from sidekick.insight.report import Release

logger = logging.getLogger(__name__)

GIT_TIMEOUT = 10.0


def last_release(directory: Path) -> Release | None:
    """The newest tag (by its date) of the repository at ``directory``, or None."""
    if not (directory / ".git").exists():
        return None
    command = [
        "git",
        "-C",
        str(directory),
        "for-each-ref",
        "--sort=-creatordate",
        "--count=1",
        "--format=%(refname:short)%00%(creatordate:iso-strict)",
        "refs/tags",
    ]
    try:
        done = subprocess.run(
            command, check=False, capture_output=True, text=True, timeout=GIT_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.info("no release read from %s: %s", directory, exc)
        return None
    name, _, when = done.stdout.strip().partition("\0")
    if done.returncode != 0 or not when:
        return None
    return Release(name, datetime.fromisoformat(when))

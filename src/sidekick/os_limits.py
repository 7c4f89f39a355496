"""Limits of the operating system that a configured path can exceed.

Checked when the config loads, so a too-long setting is one error naming its
key instead of a failure deep inside tmux or a file write hours later.
"""

from __future__ import annotations

import os
from pathlib import Path

# sun_path holds 108 bytes on Linux, one of them the terminating NUL.
UNIX_SOCKET_PATH_MAX = 107
NAME_MAX = 255
PATH_MAX = 4096


def socket_path_problem(path: Path) -> str | None:
    """Why ``path`` cannot be bound as a Unix socket, or None."""
    size = len(os.fsencode(path))
    if size > UNIX_SOCKET_PATH_MAX:
        return (
            f"the socket {path} would be {size} bytes long; a Unix socket path holds at most"
            f" {UNIX_SOCKET_PATH_MAX}"
        )
    return None


def path_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a file's name on this system, or None."""
    size = len(os.fsencode(path))
    if size >= _limit(path, "PC_PATH_MAX", PATH_MAX):
        return (
            f"{size} bytes long; paths here hold fewer than {_limit(path, 'PC_PATH_MAX', PATH_MAX)}"
        )
    name_max = _limit(path, "PC_NAME_MAX", NAME_MAX)
    for part in path.parts:
        if len(os.fsencode(part)) > name_max:
            return (
                f"the name {part[:40]}... is {len(os.fsencode(part))} bytes; names hold {name_max}"
            )
    return None


def _limit(path: Path, name: str, default: int) -> int:
    """The limit of the file system the path would be on (its nearest existing ancestor)."""
    for candidate in (path, *path.parents):
        try:
            return os.pathconf(candidate, name)
        except (OSError, ValueError):
            continue
    return default

"""Values of production's ``.env`` files never appear in what sidekick prints or records."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

MASK = "***"
# Shorter values (a port, "1", "true") would mask ordinary words; they are not secrets.
SHORTEST_SECRET = 4


def env_values(directory: Path) -> list[str]:
    values = []
    for file in sorted(directory.glob(".env*")):
        if not file.is_file():
            continue
        for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
            name, sep, value = line.partition("=")
            value = value.strip().strip("'\"")
            if sep and not name.lstrip().startswith("#") and len(value) >= SHORTEST_SECRET:
                values.append(value)
    return sorted(set(values), key=len, reverse=True)


def redactor(directory: Path | None) -> Callable[[str], str]:
    values = env_values(directory) if directory is not None and directory.is_dir() else []

    def redact(text: str) -> str:
        for value in values:
            text = text.replace(value, MASK)
        return text

    return redact

"""The ``web:`` section of config.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 8765


@dataclass(frozen=True)
class WebConfig:
    # Loopback by default: the dashboard is for the person at this machine (or a tunnel).
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    # One credential a line, ``name:token`` or ``name:pbkdf2_sha256$...`` (sidekick web --hash).
    secret_file: Path | None = None
    session_seconds: float = 8 * 3600.0
    read_only: bool = False
    # How much of a running agent's output the project page starts with.
    tail_bytes: int = 16384

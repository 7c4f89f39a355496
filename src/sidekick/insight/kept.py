"""Where investigation reports are kept, and the newest one's answer for a container."""

from __future__ import annotations

from pathlib import Path

from sidekick.config import Config
from sidekick.models import slugify


def investigations_dir(config: Config) -> Path:
    return config.daemon.state_dir / "investigations"


def last_report(config: Config, name: str) -> str:
    """The newest investigation's first answer line for a container or project, or ""."""
    directory = investigations_dir(config) / slugify(name)
    reports = sorted(directory.glob("*/REPORT.md"), key=lambda p: p.stat().st_mtime)
    if not reports:
        return ""
    text = reports[-1].read_text(encoding="utf-8", errors="replace")
    marker = "## Answer\n"
    answer = text.split(marker, 1)[1] if marker in text else ""
    first = next((ln.strip() for ln in answer.splitlines() if ln.strip()), "")
    return f"{first} ({reports[-1]})" if first else ""

"""CTO Sidekick: keeps AI coding agents working on a person's most important projects."""

from __future__ import annotations

__version__ = "0.1.0"

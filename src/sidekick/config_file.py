"""Which config file a command reads, and the environment's names for it.

Apart from :mod:`sidekick.config` so that :mod:`sidekick.config_cache` can find the file
(and the overrides that change what it means) without importing every section's class.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_PREFIX = "SIDEKICK_"
CONFIG_ENV = "SIDEKICK_CONFIG"
DEFAULT_CONFIG_NAME = "config.yaml"


def config_path(explicit: str | Path | None = None) -> Path | None:
    """The config file to read: the argument, then SIDEKICK_CONFIG, then ./config.yaml if any."""
    if explicit:
        return Path(explicit)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.exists() else None

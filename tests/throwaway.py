"""Throwaway fixture containers, made with testcontainers from a local image.

Its reaper (Ryuk) is off: it is an image from a registry, and none is reachable
here (DESIGN.md). Each container carries the session's test label instead, so one
a test does not stop itself is removed by the session's sweep (tests/conftest.py).
Nothing is pulled: testcontainers pulls only an image the engine does not have.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from testcontainers.core.container import DockerContainer

from tests.containers.helpers import BASE_IMAGE, raw_labels

# testcontainers reads it when a container starts, not when it is imported.
os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"


def throwaway(
    command: Sequence[str], *, name: str, image: str = BASE_IMAGE, **create: Any
) -> DockerContainer:
    """A labelled container, not started yet (``with`` starts it and removes it after);
    ``create`` goes to the SDK's ``containers.create``."""
    container = DockerContainer(image).with_name(name).with_command(list(command))
    return container.with_kwargs(labels=raw_labels(), **create)

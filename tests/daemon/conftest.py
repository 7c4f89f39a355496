"""Fixtures shared by the daemon tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.daemon.world import World


@pytest.fixture
def worlds() -> Iterator[list[World]]:
    """Worlds a test makes; their agents and tmux servers end with the test."""
    made: list[World] = []
    yield made
    for world in made:
        world.kill_tmux()

"""Waiting for something a real process, server or engine will do."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], timeout: float = 20.0, what: str = "", step: float = 0.05
) -> T:
    """Poll until the condition returns something truthy and return it; at the
    deadline fail with what was awaited and the last value."""
    deadline = time.monotonic() + timeout
    value = condition()
    while not value:
        if time.monotonic() > deadline:
            awaited = what or "condition"
            raise AssertionError(f"{awaited}: not met within {timeout:g} s (last: {value!r})")
        time.sleep(step)
        value = condition()
    return value

"""Skip-or-fail for tests that need an outside tool.

On a person's laptop a missing Docker engine or Claude Code CLI skips the test
with the reason; in CI (``CI=true``) the same absence fails it, so a green CI
run never hides a skipped integration test.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing(reason: str) -> NoReturn:
    """Fail in CI, skip elsewhere; never returns."""
    if in_ci():
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason)

"""Where the real Claude Code CLI is, for the tests that run it."""

from __future__ import annotations

import shutil

from tests.needs import missing


def claude_path() -> str:
    """The ``claude`` on PATH; skips the test (fails it in CI) when there is none."""
    found = shutil.which("claude")
    if found is None:
        missing("Claude Code CLI `claude` not on PATH (run .ci/install-claude-code.sh)")
    assert found is not None
    return found

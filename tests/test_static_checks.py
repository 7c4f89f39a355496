"""The checkout passes its linters: ruff, and mypy strict over src, tests and bench.

They run here so that CI fails on a type or lint error like on any other defect.
The test image holds tests/ alone (the package is installed, bench/ is not
copied), so there they skip; the checkout always has all three.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    not (REPO / "src" / "sidekick").is_dir() or not (REPO / "bench").is_dir(),
    reason="src/ and bench/ are not here (the test image)",
)


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=REPO, capture_output=True, text=True, check=False
    )


def test_ruff_finds_nothing() -> None:
    done = run("ruff", "check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_passes_over_src_tests_and_bench() -> None:
    done = run("mypy", "--cache-dir", "/dev/null")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout

"""One ``sidekick`` command run in this process, with what it printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidekick.cli import main


def sidekick(capsys: pytest.CaptureFixture[str], config: Path, *argv: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``sidekick ARGV --config CONFIG``."""
    code = main([*argv, "--config", str(config)])
    out, err = capsys.readouterr()
    return code, out, err

"""The command line reads its options where a person puts them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidekick.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "{config}", "validate"],
        ["validate", "--config", "{config}"],
        ["--config", "{config}", "prod", "status"],
        ["prod", "status", "--config", "{config}"],
    ],
)
def test_config_is_read_before_or_after_the_command(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "nowhere.yaml"
    assert main([arg.format(config=config) for arg in argv]) == 1
    assert f"{config}: config file does not exist" in capsys.readouterr().err


def test_help_says_what_the_tool_is_for(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "Keeps AI coding agents working" in capsys.readouterr().out

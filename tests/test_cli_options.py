"""The command line reads its options where a person puts them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidekick.cli import _arguments, _parser, main


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


@pytest.mark.parametrize(
    ("argv", "services"),
    [
        (["prod", "logs", "Shop", "--tail", "5", "web"], ["web"]),
        (["prod", "logs", "Shop", "web", "--tail", "5", "worker"], ["web", "worker"]),
        (["prod", "logs", "--tail", "5", "Shop", "web"], ["web"]),
        (["prod", "restart", "Shop", "--yes", "web", "db"], ["web", "db"]),
    ],
)
def test_services_may_follow_the_options(argv: list[str], services: list[str]) -> None:
    args = _arguments(_parser(argv), argv)
    assert (args.project, args.services, args.prod_action) == ("Shop", services, argv[1])


@pytest.mark.parametrize(
    "argv",
    [
        ["prod", "status", "Shop", "--json", "extra"],
        ["prod", "logs", "Shop", "--tail", "5", "web", "--bogus"],
        ["validate", "extra"],
    ],
)
def test_a_word_no_command_takes_is_still_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_an_empty_since_until_or_grep_is_no_limit() -> None:
    """``--since "$SINCE"`` with the variable unset reads every line, unfiltered."""
    argv = ["prod", "logs", "Shop", "--since", "", "--until", "", "--grep", ""]
    args = _arguments(_parser(argv), argv)
    assert (args.since, args.until, args.grep) == (None, None, None)

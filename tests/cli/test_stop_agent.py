"""``sidekick stop-agent`` says when there is nothing to stop, and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidekick.status import build_report, write_report
from tests.cli.invoke import sidekick


def stop(config: Path, project: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return sidekick(capsys, config, "stop-agent", project)


def test_stopping_an_unknown_project_fails_and_says_it_is_not_in_the_list(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = stop(config, "nosuch", capsys)
    assert code == 1
    assert out == ""
    listed = config.parent / "priorities.csv"
    assert err == f"sidekick: no agent for 'nosuch': it is not a project of the list ({listed})\n"


def test_stopping_a_misspelt_project_names_the_one_meant(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = stop(config, "shop", capsys)
    assert code == 1
    assert "no agent for 'shop'" in err and "did you mean 'Shop'?" in err


@pytest.mark.parametrize("name", ["Бэкенд", "C++ SDK", "café menu"])
def test_stopping_an_unknown_name_in_any_script_says_so(
    name: str, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = stop(config, name, capsys)
    assert (code, out) == (1, "")
    assert f"no agent for {name!r}: it is not a project of the list" in err


def test_stopping_a_listed_project_that_is_not_running_fails_and_says_so(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = stop(config, "Shop", capsys)
    assert (code, out) == (1, "")
    assert err == "sidekick: no agent for 'Shop': it is a project of the list, but not running\n"


def test_the_list_the_daemon_last_read_decides_what_is_a_project(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_report(config.parent / "state", build_report("the sheet", [], [], {}))
    code, _, err = stop(config, "Shop", capsys)
    assert code == 1
    assert "no agent for 'Shop': it is not a project of the list (the sheet)" in err

"""Commands that take a project or a directory say which of the two they could not find."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sidekick.cli import main


@pytest.mark.parametrize("command", ["context", "dockerfile"])
@pytest.mark.parametrize("name", ["nosuch", "Бэкенд", "no/such/dir"])
def test_a_name_that_is_neither_a_project_nor_a_directory_says_so(
    command: str, name: str, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, name, "--config", str(config)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"sidekick: {name!r} is neither a project configured in {config}"
        " nor an existing directory\n"
    )


@pytest.mark.parametrize("command", ["context", "dockerfile"])
def test_a_configured_project_whose_directory_is_gone_names_the_directory(
    command: str, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(config.parent / "shop")
    assert main([command, "Shop", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"sidekick: project 'Shop' (configured in {config}) has no directory:"
        f" {config.parent / 'shop'} does not exist\n"
    )


def test_a_name_missing_under_projects_root_says_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "code").mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(f"projects_root: {tmp_path / 'code'}\ndaemon: {{state_dir: {tmp_path}}}\n")
    assert main(["dockerfile", "nosuch", "--config", str(config)]) == 1
    assert "and projects_root holds no 'nosuch'" in capsys.readouterr().err

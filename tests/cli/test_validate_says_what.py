"""``sidekick validate`` says which config and list it checked, and needs no API key."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidekick.cli import main

CONTAINER_KEY = "/run/secrets/anthropic_api_key"


def validate(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = main(["validate", *argv])
    return code, capsys.readouterr().out.splitlines()


def test_validate_names_the_list_and_config_on_its_first_line(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = validate(capsys, "--config", str(config))
    assert code == 0
    assert lines[0] == f"validating {config.parent / 'priorities.csv'} (config {config})"


def test_validate_without_a_config_file_says_it_used_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SIDEKICK_CONFIG", raising=False)
    (tmp_path / "priorities.csv").write_text(
        "Project,Priority,Status,Next Action\nDemo,1,Pending,write NOTES.md\n"
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "config.yaml").write_text("{}\n")
    code, lines = validate(capsys)
    assert code == 0
    assert lines[0] == (
        f"validating {tmp_path / 'priorities.csv'} (no config file, defaults; name one with"
        " --config or SIDEKICK_CONFIG; the Compose daemon's is data/config.yaml)"
    )


@pytest.mark.parametrize("key_file", [CONTAINER_KEY, "secrets/missing key", "/nonexistent/ключ"])
def test_validate_reads_a_config_whose_api_key_file_is_elsewhere_and_notes_it(
    key_file: str, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(config.read_text() + f"api: {{key_file: '{key_file}'}}\n")
    code, lines = validate(capsys, "--config", str(config))
    assert code == 0
    assert lines[0].startswith("validating ")
    missing = key_file if key_file.startswith("/") else str(config.parent / key_file)
    assert lines[1] == (
        f"note: api.key_file: file does not exist: {missing}"
        " (not needed to validate; the daemon needs it)"
    )
    assert lines[-1].endswith("1 valid project(s), 0 problem(s)")


def test_validate_still_fails_a_config_with_another_problem(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(config.read_text() + f"api: {{key_file: {CONTAINER_KEY}}}\nwhat: 1\n")
    assert main(["validate", "--config", str(config)]) == 1
    assert "what" in capsys.readouterr().err


REPO = Path(__file__).resolve().parents[2]


# The test image holds tests/ alone: its build context leaves data/ out, as it may hold a
# person's list. The checkout always has it, so CI runs this.
@pytest.mark.skipif(
    not (REPO / "data" / "config.yaml").is_file(),
    reason="the repository's data/ is not here (the test image)",
)
def test_validate_checks_the_compose_config_from_the_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The repository's data/config.yaml, as README says to check it from the host."""
    repo = REPO
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.yaml").write_text((repo / "data" / "config.yaml").read_text())
    (data / "priorities.csv").write_text((repo / "data" / "priorities.example.csv").read_text())
    _, lines = validate(capsys, "--config", str(data / "config.yaml"))
    assert lines[0] == f"validating {data / 'priorities.csv'} (config {data / 'config.yaml'})"
    assert lines[1].startswith(f"note: api.key_file: file does not exist: {CONTAINER_KEY}")
    # The list is read and checked: the key file is no problem of it (the container's
    # /projects may be, on a host without it).
    assert lines[-1].startswith(f"{data / 'priorities.csv'}: 1 valid project(s)")
    assert not [line for line in lines[2:] if "key_file" in line]

from __future__ import annotations

from pathlib import Path

import pytest

from sidekick.config import load_config, source_kind
from sidekick.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_defaults_apply_and_relative_paths_resolve_next_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "capacity:\n  max_agents: 3\n"), environ={})
    assert config.capacity.max_agents == 3 and config.capacity.gpu_slots == 1
    assert config.priority_source.csv.path == tmp_path / "priorities.csv"
    assert config.daemon.state_dir == tmp_path / "state"
    assert config.tmux_socket == tmp_path / "state" / "tmux" / "sidekick.sock"
    assert config.profile("").command[0] == "claude"


def test_unknown_key_names_the_file_and_the_dotted_key(tmp_path: Path) -> None:
    path = write(tmp_path, "capacity:\n  max_agent: 3\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.file == str(path) and caught.value.key == "capacity.max_agent"
    assert "unknown key" in str(caught.value)


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"policy\.preempt: expected true or false"):
        load_config(write(tmp_path, "policy:\n  preempt: sometimes\n"), environ={})


def test_missing_config_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", environ={})


def test_invalid_choice_lists_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be one of auto, csv, sheets"):
        load_config(write(tmp_path, "priority_source:\n  type: excel\n"), environ={})


def test_environment_overrides_the_file_and_is_named_in_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "capacity:\n  max_agents: 3\n")
    env = {"SIDEKICK_CAPACITY__MAX_AGENTS": "5", "SIDEKICK_DAEMON__STATE_DIR": "/state"}
    config = load_config(path, environ=env)
    assert config.capacity.max_agents == 5 and config.daemon.state_dir == Path("/state")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"SIDEKICK_CAPACITY__GPU_SLOTS": "many"})
    assert caught.value.file == "environment variable SIDEKICK_CAPACITY__GPU_SLOTS"


def test_agent_profiles_and_project_directories(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "projects:\n  Alpha: code/alpha\nprojects_root: /srv/projects\n"
        "agents:\n  default:\n    command: [sh, -c, 'echo {next_action}']\n"
        "  big:\n    command: [claude, -p, '{next_action}']\n    env: {MODEL: opus}\n",
    )
    config = load_config(path, environ={})
    assert config.project_directory("Alpha") == tmp_path / "code" / "alpha"
    assert config.project_directory("Beta Two") == Path("/srv/projects/beta-two")
    assert config.project_directory("Gamma", "/elsewhere") == Path("/elsewhere")
    assert config.profile("big").env == {"MODEL": "opus"}


def test_sheets_needs_its_credentials_file(tmp_path: Path) -> None:
    text = "priority_source:\n  type: sheets\n  sheets:\n    spreadsheet_id: abc\n"
    text += f"    credentials_file: {tmp_path / 'missing.json'}\n"
    with pytest.raises(ConfigError, match="credentials_file: file does not exist"):
        load_config(write(tmp_path, text), environ={})


def test_auto_source_picks_sheets_only_when_credentials_exist(tmp_path: Path) -> None:
    creds = tmp_path / "creds.json"
    text = f"priority_source:\n  sheets:\n    spreadsheet_id: abc\n    credentials_file: {creds}\n"
    path = write(tmp_path, text)
    assert source_kind(load_config(path, environ={})) == "csv"
    creds.write_text("{}")
    assert source_kind(load_config(path, environ={})) == "sheets"

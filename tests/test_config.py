from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from sidekick.config import Config, load_config, source_kind
from sidekick.errors import ConfigError
from sidekick.os_limits import NAME_MAX, PATH_MAX, UNIX_SOCKET_PATH_MAX
from sidekick.runners.bell import ExitBell, bell_path, ring


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
        "agents:\n  default:\n    command: [sh, -c, 'echo \"$SIDEKICK_NEXT_ACTION\"']\n"
        "  big:\n    command: [claude, -p, --, '{next_action}']\n    env: {MODEL: opus}\n",
    )
    config = load_config(path, environ={})
    assert config.project_directory("Alpha") == tmp_path / "code" / "alpha"
    assert config.project_directory("Beta Two") == Path("/srv/projects/beta-two")
    assert config.project_directory("Gamma", "/elsewhere") == Path("/elsewhere")
    assert config.profile("big").env == {"MODEL": "opus"}


def test_a_command_given_a_directory_uses_it_even_with_a_projects_root(tmp_path: Path) -> None:
    """`sidekick context DIR` and `sidekick dockerfile DIR`: a directory is taken as given."""
    (tmp_path / "elsewhere" / "tiny").mkdir(parents=True)
    config = load_text(
        tmp_path, f"projects:\n  Alpha: code/alpha\nprojects_root: {tmp_path}/root\n"
    )
    assert (
        config.directory_of(str(tmp_path / "elsewhere" / "tiny")) == tmp_path / "elsewhere" / "tiny"
    )
    assert config.directory_of("Alpha") == tmp_path / "code" / "alpha"
    assert config.directory_of("Beta Two") == tmp_path / "root" / "beta-two"


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


# --- values mean what the person typed (YAML 1.1's guesses refused or undone) -------------


def load_text(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, text), environ=environ or {})


def refusal(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text)
    assert caught.value.file == str(tmp_path / "config.yaml")
    return caught.value


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "n", "Yes", "NO", "On", "OFF"])
def test_a_yaml11_boolean_word_where_a_switch_goes_asks_for_true_or_false(
    tmp_path: Path, word: str
) -> None:
    error = refusal(tmp_path, f"capacity:\n  max_agents: 1\npolicy:\n  preempt: {word}\n")
    assert error.key == "policy.preempt" and error.line == 4
    assert f"{word} is a boolean only to YAML 1.1: write true or false" in str(error)
    assert "config.yaml, line 4: policy.preempt" in str(error)


@pytest.mark.parametrize(("word", "meant"), [("true", True), ("True", True), ("FALSE", False)])
def test_yaml12_booleans_are_switches(tmp_path: Path, word: str, meant: bool) -> None:
    assert load_text(tmp_path, f"policy:\n  preempt: {word}\n").policy.preempt is meant


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "n", "true", "False"])
def test_a_boolean_word_where_text_goes_must_be_quoted(tmp_path: Path, word: str) -> None:
    error = refusal(tmp_path, f"priority_source:\n  sheets:\n    worksheet: {word}\n")
    assert error.key == "priority_source.sheets.worksheet" and error.line == 3
    assert f"quote it ('{word}')" in str(error)
    quoted = load_text(tmp_path, f"priority_source:\n  sheets:\n    worksheet: '{word}'\n")
    assert quoted.priority_source.sheets.worksheet == word


@pytest.mark.parametrize(
    "typed",
    [
        "012",
        "0o12",
        "0x1F",
        "0b101",
        "1_000",
        "1:30",
        "2026-12-15",
        "2024.10",
        "1e3",
        ".inf",
        "007",
    ],
)
def test_text_that_looks_like_a_number_or_date_stays_as_typed(tmp_path: Path, typed: str) -> None:
    text = f"containers:\n  instance: {typed}\nagents:\n  default:\n    env: {{TAG: {typed}}}\n"
    config = load_text(tmp_path, text)
    assert config.containers.instance == typed and config.profile("").env == {"TAG": typed}


def test_a_boolean_word_in_a_command_or_environment_must_be_quoted(tmp_path: Path) -> None:
    error = refusal(tmp_path, "agents:\n  default:\n    env:\n      DEBUG: on\n")
    assert error.key == "agents.default.env.DEBUG" and error.line == 4
    error = refusal(tmp_path, "agents:\n  default:\n    command: [tool, --color, off]\n")
    assert error.key == "agents.default.command[2]" and "quote it ('off')" in str(error)


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("012", "012 is octal to YAML 1.1: write 12 without the leading zero"),
        ("00", "00 is octal to YAML 1.1: write 0 without the leading zero"),
        ("1:30", "1:30 is base 60 to YAML 1.1: write one number"),
        ("0o12", "expected a whole number in decimal digits, got '0o12'"),
        ("0x1F", "expected a whole number in decimal digits, got '0x1F'"),
        ("2026-12-15", "expected a whole number in decimal digits, got '2026-12-15'"),
        ("3.0", "expected a whole number in decimal digits, got '3.0'"),
        ("yes", "expected a whole number in decimal digits, got 'yes'"),
    ],
)
def test_a_whole_number_that_yaml_versions_read_apart_is_refused(
    tmp_path: Path, typed: str, why: str
) -> None:
    error = refusal(tmp_path, f"capacity:\n  max_agents: {typed}\n")
    assert error.key == "capacity.max_agents" and error.line == 2 and why in str(error)


@pytest.mark.parametrize(
    ("typed", "meant"), [("1_000", 1000), ("0", 0), ("+3", 3), ("12", 12), ("-0", 0)]
)
def test_whole_numbers_in_decimal_mean_what_they_say(
    tmp_path: Path, typed: str, meant: int
) -> None:
    assert load_text(tmp_path, f"capacity:\n  max_agents: {typed}\n").capacity.max_agents == meant


@pytest.mark.parametrize(
    ("typed", "meant"), [("90", 90.0), ("1e3", 1000.0), (".5", 0.5), ("2.50", 2.5), ("0.5", 0.5)]
)
def test_numbers_mean_what_they_say(tmp_path: Path, typed: str, meant: float) -> None:
    config = load_text(tmp_path, f"daemon:\n  reconcile_interval: {typed}\n")
    assert config.daemon.reconcile_interval == meant


@pytest.mark.parametrize("typed", ["1:30", "01:30:00", "030"])
def test_a_duration_in_base_60_or_octal_is_refused(tmp_path: Path, typed: str) -> None:
    error = refusal(tmp_path, f"daemon:\n  reconcile_interval: {typed}\n")
    assert error.key == "daemon.reconcile_interval" and "YAML 1.1" in str(error)


def test_keys_stay_the_text_that_was_typed(tmp_path: Path) -> None:
    text = (
        "projects:\n  yes: code/yes\n  on: code/on\n  012: code/012\n  2026-12-15: code/d\n"
        "  1:30: code/t\n  null: code/null\n"
        "agents:\n  n: {command: [claude]}\ndefault_agent: 'n'\n"
    )
    config = load_text(tmp_path, text)
    assert sorted(config.projects) == ["012", "1:30", "2026-12-15", "null", "on", "yes"]
    assert config.profile("").command == ("claude",)


def test_an_on_key_is_an_unknown_key_named_on_not_true(tmp_path: Path) -> None:
    error = refusal(tmp_path, "on:\n  max_agents: 3\n")
    assert error.key == "on" and error.line == 1 and "unknown key" in str(error)


def test_a_key_written_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    error = refusal(tmp_path, "capacity:\n  max_agents: 3\n  gpu_slots: 1\n  max_agents: 5\n")
    assert "capacity.max_agents is written twice (lines 2 and 4)" in str(error)


def test_null_means_not_set_only_where_a_setting_may_be_unset(tmp_path: Path) -> None:
    assert load_text(tmp_path, "api:\n  base_url: ~\n").api.base_url is None
    assert load_text(tmp_path, "api:\n  base_url: null\n").api.base_url is None
    assert load_text(tmp_path, "api:\n  base_url: '~'\n").api.base_url == "~"
    error = refusal(tmp_path, "priority_source:\n  sheets:\n    worksheet: ~\n")
    assert error.key == "priority_source.sheets.worksheet" and error.line == 3


def test_anchors_and_merge_keys_still_work(tmp_path: Path) -> None:
    text = (
        "agents:\n  default: &base\n    command: [claude]\n    resume: false\n"
        "  big:\n    <<: *base\n    env: {MODEL: opus}\n"
    )
    big = load_text(tmp_path, text).profile("big")
    assert big.command == ("claude",) and big.resume is False and big.env == {"MODEL": "opus"}


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("SIDEKICK_POLICY__PREEMPT", "yes", "write true or false"),
        ("SIDEKICK_CAPACITY__MAX_AGENTS", "012", "write 12 without the leading zero"),
        ("SIDEKICK_PRIORITY_SOURCE__SHEETS__WORKSHEET", "off", "quote it ('off')"),
    ],
)
def test_environment_overrides_follow_the_same_rules(
    tmp_path: Path, variable: str, value: str, why: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, "", environ={variable: value})
    assert caught.value.file == f"environment variable {variable}" and why in str(caught.value)
    assert caught.value.line is None


def test_environment_overrides_keep_text_as_typed(tmp_path: Path) -> None:
    environ = {
        "SIDEKICK_PRIORITY_SOURCE__SHEETS__WORKSHEET": "012",
        "SIDEKICK_CONTAINERS__INSTANCE": "'no'",
        "SIDEKICK_POLICY__PREEMPT": "true",
        "SIDEKICK_CAPACITY__MAX_AGENTS": "1_000",
    }
    config = load_text(tmp_path, "", environ=environ)
    assert config.priority_source.sheets.worksheet == "012"
    assert config.containers.instance == "no" and config.policy.preempt is True
    assert config.capacity.max_agents == 1000


# --- limits of the operating system, checked at load -----------------------------------------

TMUX_SOCKET_TAIL = len("/tmux/sidekick.sock")


def directory_of_length(tmp_path: Path, size: int, fill: str = "d") -> Path:
    """A path under tmp_path exactly ``size`` bytes long."""
    room = size - len(os.fsencode(tmp_path)) - 1
    name = fill * (room // len(fill.encode()))
    name += "x" * (room - len(name.encode()))
    path = tmp_path / name
    assert len(os.fsencode(path)) == size
    return path


@pytest.mark.parametrize("fill", ["d", "é"])
def test_a_state_dir_whose_tmux_socket_exceeds_107_bytes_is_refused(
    tmp_path: Path, fill: str
) -> None:
    fits = directory_of_length(tmp_path, UNIX_SOCKET_PATH_MAX - TMUX_SOCKET_TAIL, fill)
    config = load_text(tmp_path, f"daemon:\n  state_dir: {fits}\n")
    assert len(os.fsencode(config.tmux_socket)) == UNIX_SOCKET_PATH_MAX
    too_long = directory_of_length(tmp_path, UNIX_SOCKET_PATH_MAX - TMUX_SOCKET_TAIL + 1, fill)
    error = refusal(tmp_path, f"capacity:\n  max_agents: 1\ndaemon:\n  state_dir: {too_long}\n")
    assert error.key == "daemon.state_dir" and error.line == 4
    assert "would be 108 bytes long" in str(error) and "at most 107" in str(error)


def test_a_tmux_socket_over_107_bytes_is_refused_naming_its_key(tmp_path: Path) -> None:
    socket = directory_of_length(tmp_path, UNIX_SOCKET_PATH_MAX + 1)
    error = refusal(tmp_path, f"tmux:\n  socket: {socket}\n")
    assert error.key == "tmux.socket" and "choose a shorter tmux.socket" in str(error)


@pytest.mark.parametrize(("size", "starts"), [(UNIX_SOCKET_PATH_MAX, True), (108, False)])
def test_tmux_itself_binds_107_bytes_and_no_more(tmp_path: Path, size: int, starts: bool) -> None:
    socket = directory_of_length(tmp_path, size)
    command = ["tmux", "-S", str(socket), "-f", os.devnull]
    started = subprocess.run([*command, "new-session", "-d", "sleep 30"], check=False)
    subprocess.run([*command, "kill-server"], check=False, capture_output=True)
    assert (started.returncode == 0) is starts


def test_a_path_with_a_name_over_255_bytes_is_refused_naming_its_key(tmp_path: Path) -> None:
    fits = tmp_path / ("n" * NAME_MAX) / "priorities.csv"
    config = load_text(tmp_path, f"priority_source:\n  csv:\n    path: {fits}\n")
    assert config.priority_source.csv.path == fits
    long_name = tmp_path / ("é" * 128) / "priorities.csv"
    error = refusal(tmp_path, f"priority_source:\n  csv:\n    path: {long_name}\n")
    assert error.key == "priority_source.csv.path" and error.line == 3
    assert "is 256 bytes; names hold 255" in str(error)


def test_a_path_of_path_max_bytes_is_refused_naming_its_key(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["p" * 200] * 21)
    assert len(os.fsencode(deep)) >= PATH_MAX
    error = refusal(tmp_path, f"projects:\n  Alpha: code\n  Beta: {deep}\n")
    assert error.key == "projects.Beta" and error.line == 3
    assert f"paths here hold fewer than {PATH_MAX}" in str(error)


def test_a_long_state_dir_is_fine_for_the_exit_bell_when_tmux_has_its_own_socket(
    tmp_path: Path,
) -> None:
    # The bell binds through /proc/self/fd/<dir>/<name>, so only tmux's socket is limited.
    state = directory_of_length(tmp_path, 200)
    short = tmp_path / "t.sock"
    config = load_text(tmp_path, f"daemon:\n  state_dir: {state}\ntmux:\n  socket: {short}\n")
    heard = threading.Event()
    bell = ExitBell(bell_path(config.daemon.state_dir), heard.set)
    bell.start()
    try:
        assert len(os.fsencode(bell.path)) > UNIX_SOCKET_PATH_MAX
        assert ring(bell.path) and heard.wait(5)
    finally:
        bell.stop()

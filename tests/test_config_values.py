"""config.yaml as a new user writes it: their own profiles beside the built-in ones, and
numbers a program cannot use refused when the config loads, naming the key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidekick.cli import main
from sidekick.config import AgentProfile, Config, load_config
from sidekick.errors import ConfigError


def load_text(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ=environ or {})


def refusal(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text, environ)
    return caught.value


# --- the built-in profile stays when a person adds their own ---------------------------


def test_adding_an_agents_section_keeps_the_builtin_default_profile(tmp_path: Path) -> None:
    config = load_text(tmp_path, "agents:\n  mine:\n    command: [make, test]\n    claude: false\n")
    assert set(config.agents) == {"default", "mine"}
    assert config.default_agent == "default"
    # The demo row's Model is "default": it still names the built-in Claude Code profile.
    assert config.profile("default") == AgentProfile()
    assert config.profile("") == AgentProfile()
    assert config.profile("mine").command == ("make", "test")


def test_the_demo_rows_model_default_still_validates_once_a_profile_is_added(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "code").mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"projects_root: {tmp_path}\nagents:\n  mine:\n    command: [make]\n    claude: false\n"
    )
    rows = tmp_path / "priorities.csv"
    rows.write_text(
        "Project,Priority,Status,Agent,Last Update,Next Action,Deadline,GPU,Model\n"
        "code,1,Pending,,,Write NOTES.md with a one-line summary of this project,,no,default\n"
        "other,2,Complete,,,,,no,mine\n"
    )
    assert main(["validate", "--config", str(config), "--file", str(rows)]) == 0
    assert "2 valid project(s), 0 problem(s)" in capsys.readouterr().out


def test_a_profile_named_default_replaces_the_builtin_one(tmp_path: Path) -> None:
    config = load_text(tmp_path, "agents:\n  default:\n    command: [make]\n    claude: false\n")
    assert set(config.agents) == {"default"}
    assert config.profile("default").command == ("make",)


def test_default_agent_may_name_a_profile_of_the_persons_own(tmp_path: Path) -> None:
    text = "default_agent: mine\nagents:\n  mine:\n    command: [make]\n    claude: false\n"
    config = load_text(tmp_path, text)
    assert config.profile("").command == ("make",)
    assert config.profile("default") == AgentProfile()


def test_a_missing_default_agent_names_its_line_and_the_profiles_there_are(
    tmp_path: Path,
) -> None:
    text = "agents:\n  mine:\n    command: [make]\n    claude: false\ndefault_agent: cluade\n"
    error = refusal(tmp_path, text)
    assert error.key == "default_agent" and error.line == 5
    assert "no agent profile named 'cluade' (profiles: default, mine)" in str(error)
    assert "config.yaml, line 5: default_agent" in str(error)


# --- numbers a program cannot use ----------------------------------------------------


def nested(key: str, value: str) -> str:
    """The YAML that sets one dotted key, each section on its own line."""
    *sections, name = key.split(".")
    lines = [f"{'  ' * depth}{section}:" for depth, section in enumerate(sections)]
    return "\n".join([*lines, f"{'  ' * len(sections)}{name}: {value}"]) + "\n"


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("budget.total_usd", "-5", "must be 0 or more, got -5.0"),
        ("budget.per_project_usd", "-0.01", "must be 0 or more"),
        ("web.port", "99999", "must be from 1 to 65535, got 99999"),
        ("web.port", "0", "must be from 1 to 65535, got 0"),
        ("web.port", "-1", "must be from 1 to 65535"),
        ("capacity.max_agents", "-1", "0 or more"),
        ("capacity.gpu_slots", "-1", "0 or more"),
        ("policy.stop_grace", "-3", "0 or more"),
        ("policy.max_runtime", ".nan", "expected a number"),
        ("daemon.reconcile_interval", ".inf", "must be a finite number"),
        ("daemon.reconcile_interval", "0", "must be more than 0"),
        ("daemon.heartbeat_max_age", "0", "more than 0"),
        ("daemon.debounce", "-0.5", "0 or more"),
        ("priority_source.csv.poll_interval", "0", "more than 0"),
        ("priority_source.csv.lock_wait", "-1", "0 or more"),
        ("priority_source.sheets.requests_per_minute", "0", "more than 0"),
        ("priority_source.sheets.retry_deadline", "-1", "0 or more"),
        ("containers.timeout", "0", "more than 0"),
        ("web.session_seconds", "-60", "0 or more"),
        ("web.tail_bytes", "-1", "0 or more"),
        ("agents.default.cpus", "-2", "0 or more"),
        ("agents.default.reserve_cpus", "-1", "must be above 0"),
        ("agents.default.pids_limit", "-2", "must be -1 or more"),
        ("agents.default.gpu_resources.NVIDIA-GPU", "-1", "0 or more"),
    ],
)
def test_a_number_no_program_can_use_is_refused_naming_key_and_line(
    tmp_path: Path, key: str, value: str, problem: str
) -> None:
    error = refusal(tmp_path, "# a new user's config\n" + nested(key, value))
    assert error.key == key and error.line == key.count(".") + 2
    assert problem in str(error)


def test_a_port_out_of_range_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    error = refusal(tmp_path, "", environ={"SIDEKICK_WEB__PORT": "70000"})
    assert error.file == "environment variable SIDEKICK_WEB__PORT" and error.key == "web.port"


@pytest.mark.parametrize(
    "text",
    [
        "web: {port: 1}\n",
        "web: {port: 65535}\n",
        "budget: {total_usd: 0, per_project_usd: 0}\n",
        "capacity: {max_agents: 0, gpu_slots: 0}\n",
        "policy: {max_runtime: 0, stop_grace: 0}\n",
        "daemon: {debounce: 0}\n",
        "agents:\n  default:\n    pids_limit: -1\n",
    ],
)
def test_numbers_at_the_edge_of_their_range_are_kept(tmp_path: Path, text: str) -> None:
    load_text(tmp_path, text)


@pytest.mark.parametrize("port", ["99999", "0", "-1", "65536", "http"])
def test_sidekick_web_refuses_a_port_option_out_of_range(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["web", "--port", port])
    assert exited.value.code == 2
    assert "argument --port" in capsys.readouterr().err

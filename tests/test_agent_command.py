"""Agent command templates: placeholders are data, never code an interpreter runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidekick import agent_command
from sidekick.config import load_config
from sidekick.errors import ConfigError

UNSAFE = [
    ["sh", "-c", "echo {next_action} > out.txt"],
    ["bash", "-c", "echo {next_action}"],
    ["zsh", "-c", "print {project}"],
    ["dash", "-c", "echo {next_action}"],
    ["ksh", "-c", "echo {next_action}"],
    ["fish", "-c", "echo {next_action}"],
    ["fish", "--command=echo {next_action}"],
    ["bash", "-lc", "echo {next_action}"],
    ["sh", "-ec", "echo {next_action}"],
    ["bash", "-xec", "echo {next_action}"],
    ["sh", "-e", "-c", "echo {next_action}"],
    ["bash", "-o", "pipefail", "-c", "echo {next_action}"],
    ["/bin/sh", "-c", "cd {directory} && make"],
    ["/usr/bin/env", "bash", "-c", "echo {next_action}"],
    ["env", "FOO=1", "sh", "-c", "echo {next_action}"],
    ["env", "-S", "sh -c 'echo {next_action}'"],
    ["busybox", "sh", "-c", "echo {next_action}"],
    ["nice", "-n", "5", "sh", "-c", "echo {next_action}"],
    ["timeout", "60", "bash", "-c", "echo {next_action}"],
    ["sudo", "-u", "agent", "sh", "-c", "echo {next_action}"],
    ["python3", "-c", "print('{next_action}')"],
    ["python3.11", "-c", "print('{next_action}')"],
    ["python", "-c" + "print('{next_action}')"],
    ["perl", "-e", "print '{next_action}'"],
    ["ruby", "-e", "puts '{next_action}'"],
    ["node", "-e", "console.log('{next_action}')"],
    ["node", "--eval=console.log('{next_action}')"],
    ["php", "-r", "echo '{next_action}';"],
    ["pwsh", "-Command", "Write-Output '{next_action}'"],
    ["su", "agent", "-c", "echo {next_action}"],
    ["flock", "/tmp/lock", "-c", "echo {next_action}"],
    ["ssh", "build-host", "echo {next_action}"],
    ["watch", "echo {project}"],
    ["awk", 'BEGIN { print "{next_action}" }'],
    ["sed", "-e", "s/x/{next_action}/", "file"],
]

SAFE = [
    ["claude", "-p", "--output-format", "stream-json"],
    ["claude", "-p", "--", "{next_action}"],
    ["echo", "{next_action}"],
    ["sh", "-c", 'echo "$SIDEKICK_NEXT_ACTION" > out.txt'],
    ["sh", "-c", 'echo "$1" > out.txt', "sh", "{next_action}"],
    ["bash", "-lc", 'printf %s "$1"', "bash", "{next_action}"],
    ["sh", "script.sh", "{next_action}"],
    ["python3", "agent.py", "--task", "{next_action}"],
    ["python3", "-u", "agent.py", "{project}"],
    ["node", "agent.js", "{next_action}"],
    ["awk", "-f", "prog.awk", "{next_action}"],
    ["bash", "script.sh", "-s"],
]


@pytest.mark.parametrize("command", UNSAFE, ids=lambda c: " ".join(c)[:40])
def test_a_placeholder_in_code_an_interpreter_runs_is_found(command: list[str]) -> None:
    found = agent_command.unsafe_placeholders(command)
    assert found, command
    assert all(agent_command.has_placeholder(f.argument) for f in found)
    assert command[found[0].index] == found[0].argument


@pytest.mark.parametrize("command", SAFE, ids=lambda c: " ".join(c)[:40])
def test_a_placeholder_given_as_data_is_allowed(command: list[str]) -> None:
    assert agent_command.unsafe_placeholders(command, "{next_action}") == []


@pytest.mark.parametrize(
    "command", [["sh"], ["bash", "-s"], ["bash", "-s", "arg"], ["python3"], ["bash", "-l"]]
)
def test_a_placeholder_on_the_stdin_of_a_bare_interpreter_is_found(command: list[str]) -> None:
    assert agent_command.unsafe_placeholders(command, "{next_action}")
    assert agent_command.unsafe_placeholders(command, "") == []


def test_the_default_profile_gives_the_prompt_on_stdin_as_data() -> None:
    profile = load_config(None, environ={}).profile("")
    assert not any(agent_command.has_placeholder(a) for a in profile.command)
    assert profile.stdin == "{next_action}"
    assert agent_command.unsafe_placeholders(profile.command, profile.stdin) == []


def write_config(tmp_path: Path, agents: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("agents:\n" + agents, encoding="utf-8")
    return path


def test_a_profile_with_a_placeholder_in_a_shell_script_is_refused_naming_profile_and_argument(
    tmp_path: Path,
) -> None:
    path = write_config(
        tmp_path,
        "  default:\n    command: [claude, -p]\n"
        '  notes:\n    command: [sh, -c, "echo {next_action} > out.txt"]\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    message = str(caught.value)
    assert "agents.notes.command[2]" in message
    assert "$SIDEKICK_NEXT_ACTION" in message
    assert str(path) in message


def test_a_placeholder_on_a_bare_shells_stdin_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, "  default:\n    command: [bash]\n")
    with pytest.raises(ConfigError, match=r"agents\.default\.stdin"):
        load_config(path, environ={})


def test_values_are_filled_once_so_a_value_naming_a_placeholder_stays_text() -> None:
    values = {"next_action": "say {project}", "project": "P"}
    assert agent_command.render(("{next_action}", "{project}", "{other}"), values) == (
        "say {project}",
        "P",
        "{other}",
    )


def test_fields_too_long_for_one_environment_string_are_left_out() -> None:
    long = "x" * 140_000
    env = agent_command.field_environment({"next_action": long, "project": "P"})
    assert env == {"SIDEKICK_PROJECT": "P"}
    env = agent_command.field_environment({"next_action": "y" * 20_000, "directory": "/d"})
    assert env == {"SIDEKICK_NEXT_ACTION": "y" * 20_000, "SIDEKICK_DIRECTORY": "/d"}


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (("claude", "x" * 140_000), {}, "argument 1 is 140000 bytes"),
        (("claude", "é" * 70_000), {}, "argument 1 is 140000 bytes"),
        (("claude",), {"BIG": "x" * 140_000}, "environment variable BIG"),
        (("claude", *["x" * 120_000] * 40), {}, "over this system's"),
        (("claude", "x" * 20_000), {"OK": "y" * 20_000}, ""),
    ],
    ids=["ascii-argument", "two-byte-argument", "environment", "all-together", "fits"],
)
def test_what_linux_cannot_exec_is_named(
    argv: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    problem = agent_command.oversized(argv, env)
    assert (expected in problem) if expected else problem == ""


@pytest.mark.parametrize(
    ("command", "found"),
    [
        (["claude", "-p", "{next_action}", "--output-format", "json"], [2]),
        (["/usr/local/bin/claude", "-p", "--allowedTools", "Bash", "{next_action}"], [4]),
        (["claude", "-p", "{project}: {next_action}"], [2]),
        (["claude", "-p", "--", "{next_action}"], []),
        (["claude", "-p", "--append-system-prompt", "Work on {project}"], []),
        (["other-agent", "{next_action}"], []),
    ],
)
def test_a_claude_prompt_argument_that_could_start_with_a_dash_is_found(
    command: list[str], found: list[int]
) -> None:
    assert agent_command.option_like_placeholders(command) == found


def test_the_old_profile_with_the_prompt_as_an_argument_is_refused_with_the_fix(
    tmp_path: Path,
) -> None:
    path = write_config(tmp_path, '  default:\n    command: [claude, -p, "{next_action}"]\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    message = str(caught.value)
    assert "agents.default.command[2]" in message
    assert "stdin" in message and "'--'" in message

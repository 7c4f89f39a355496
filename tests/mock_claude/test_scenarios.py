"""Scenario files: loading, precise errors, matching, and position from the request alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anthropic
import pytest

from sidekick.mock_claude import accounting, scenarios
from sidekick.mock_claude.scenarios import ScenarioError
from tests.mock_claude.conftest import SCENARIOS
from tests.mockapi import running_mock


def _error(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        scenarios.parse(text, "s.yaml")
    return caught.value


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("scenarios: []", "scenarios", "non-empty list"),
        ("- just a list", "scenarios", "non-empty list"),
        ("scenarios:\n  - steps: [{text: hi}]", "scenarios[0].name", "non-empty string"),
        ("scenarios:\n  - name: a\n    steps: []", "scenarios[0].steps", "non-empty list"),
        (
            "scenarios:\n  - name: a\n    steps: [{fault: meltdown}]",
            "scenarios[0].steps[0].fault",
            "unknown fault 'meltdown'",
        ),
        (
            "scenarios:\n  - name: a\n    steps: [{txt: hi}]",
            "scenarios[0].steps[0]",
            "unknown keys ['txt']",
        ),
        (
            "scenarios:\n  - name: a\n    steps: [{text: hi, times: 0}]",
            "scenarios[0].steps[0].times",
            "integer >= 1",
        ),
        (
            "scenarios:\n  - name: a\n    match: {user_regex: '('}\n    steps: [{text: hi}]",
            "scenarios[0].match.user_regex",
            "bad regular expression",
        ),
        (
            "scenarios:\n  - {name: a, steps: [{text: x}]}\n  - {name: a, steps: [{text: y}]}",
            "scenarios[1].name",
            "duplicate name 'a'",
        ),
        (
            "scenarios:\n  - name: a\n    steps: [{tool_use: {input: {}}}]",
            "scenarios[0].steps[0].tool_use[0]",
            "non-empty name",
        ),
        ("scenarios:\n  - name: a\n    steps: [{}]", "scenarios[0].steps[0]", "needs text"),
    ],
)
def test_bad_scenario_files_name_the_place_and_the_problem(
    text: str, where: str, problem: str
) -> None:
    error = _error(text)
    assert error.file == "s.yaml"
    assert error.where == where
    assert problem in error.problem
    assert str(error).startswith(f"s.yaml: {where}: ")


def test_invalid_yaml_is_a_scenario_error() -> None:
    assert "not valid YAML" in _error("scenarios: [unclosed").problem


def test_missing_file_is_a_scenario_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as caught:
        scenarios.load(tmp_path / "absent.yaml")
    assert caught.value.file.endswith("absent.yaml")


def test_every_packaged_scenario_file_loads() -> None:
    names = sorted(scenarios.packaged_names())
    assert "default.yaml" in names and "agent-demo.yaml" in names
    for name in names:
        assert scenarios.parse(scenarios.packaged(name), name).scenarios
    assert scenarios.load().choose("anything", "", "m").name == "default"


def test_first_matching_scenario_wins_and_all_conditions_must_hold() -> None:
    book = scenarios.parse(
        """
scenarios:
  - {name: both, match: {user: deploy, model: haiku}, steps: [{text: a}]}
  - {name: regex, match: {user_regex: "^fix (bug|issue) \\\\d+$"}, steps: [{text: b}]}
  - {name: system, match: {system_regex: "(?i)reviewer"}, steps: [{text: c}]}
"""
    )
    assert book.choose("Please DEPLOY it", "", "claude-haiku-5-5").name == "both"
    assert book.choose("Please deploy it", "", "claude-opus-5-5").name == "fallback"
    assert book.choose("fix bug 12", "", "m").name == "regex"
    assert book.choose("fix bug twelve", "You are a Reviewer", "m").name == "system"


def test_steps_default_their_stop_reason_from_their_content() -> None:
    book = scenarios.parse(
        "scenarios:\n  - name: a\n    steps:\n"
        "      - {tool_use: {name: Bash, input: {command: ls}}}\n"
        "      - {text: done}\n"
        "      - {text: cut, stop_reason: max_tokens}\n"
    )
    steps = book.scenarios[0].steps
    assert [s.effective_stop_reason for s in steps] == ["tool_use", "end_turn", "max_tokens"]


def test_position_counts_assistant_turns_after_the_latest_prompt() -> None:
    body = {
        "system": "x",
        "messages": [
            {"role": "user", "content": "first prompt"},
            {"role": "assistant", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "second prompt"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "1", "name": "B"}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "1"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "2", "name": "B"}]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "2"},
                    {"type": "text", "text": "a note next to the result"},
                ],
            },
        ],
    }
    position = scenarios.locate(body)
    assert position.prompt == "second prompt"
    assert position.step == 2


def test_working_directory_is_read_from_system_messages_too() -> None:
    body = {
        "system": [{"type": "text", "text": "You are an agent."}],
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "system",
                "content": [{"type": "text", "text": " - Primary working directory: /w/p q\n"}],
            },
        ],
    }
    position = scenarios.locate(body)
    assert position.cwd == "/w/p q"
    assert "Primary working directory" in position.system


def test_placeholders_are_filled_through_nested_inputs_and_unknown_ones_stay() -> None:
    values = {"cwd": "/p", "model": "m"}
    rendered = scenarios.render(
        {"a": ["{{cwd}}/x", {"b": "{{ model }} {{other}}"}], "n": 3}, values
    )
    assert rendered == {"a": ["/p/x", {"b": "m {{other}}"}], "n": 3}


def test_token_estimate_is_a_quarter_of_the_characters_read() -> None:
    body = {
        "system": "abcd",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "efgh"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "input": {"k": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "content": "12345678"}]},
        ],
    }
    # 4 + 4 + len('{"k":1}') == 7 + 8 == 23 characters
    assert accounting.input_tokens(body) == 6
    assert accounting.input_tokens({"messages": []}) == 1
    assert accounting.output_tokens([{"type": "text", "text": "x" * 9}]) == 3


def test_prices_pick_the_first_matching_family_and_default_otherwise() -> None:
    assert accounting.price_for("claude-opus-4-1-20250805").input_per_mtok == 15.0
    assert accounting.price_for("claude-opus-5-5").output_per_mtok == 20.0
    assert accounting.price_for("claude-haiku-4-5").cost(1_000_000, 0) == 1.0
    assert accounting.price_for("some-local-model") == accounting.DEFAULT_PRICE


def test_command_line_refuses_a_bad_scenario_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenarios:\n  - name: a\n    steps: [{fault: nope}]\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "sidekick.mock_claude", "--port", "0", "--scenarios", str(bad)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "bad.yaml: scenarios[0].steps[0].fault: unknown fault 'nope'" in done.stderr


def test_command_line_refuses_an_unknown_forced_scenario() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sidekick.mock_claude", "--port", "0", "--scenario", "ghost"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "no scenario named 'ghost'" in done.stderr


def test_environment_variables_configure_the_command_line() -> None:
    env = dict(os.environ, MOCK_CLAUDE_SCENARIO="phantom", MOCK_CLAUDE_PORT="0")
    done = subprocess.run(
        [sys.executable, "-m", "sidekick.mock_claude"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert done.returncode == 2
    assert "no scenario named 'phantom'" in done.stderr


def test_scenario_forced_at_start_answers_every_prompt() -> None:
    with running_mock(SCENARIOS, scenario="by-system") as url:
        client = anthropic.Anthropic(base_url=url, api_key="any-key", max_retries=0)
        message = client.messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "use a tool"}]
        )
    assert message.content[0].text == "Arr."  # type: ignore[union-attr]

"""The Claude Code helpers on their own: config dir state, environment, result parsing."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from sidekick import claude_code

SUCCESS_LINE = {
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "num_turns": 4,
    "session_id": "5b0e1c9e-0000-4000-8000-000000000001",
    "total_cost_usd": 0.1951,
    "result": "NOTES.md is written.",
    "usage": {
        "input_tokens": 48000,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 48,
        "output_tokens": 87,
    },
    "api_error_status": None,
    "terminal_reason": "completed",
}

# As Claude Code 2.1.330 writes it after CLAUDE_CODE_MAX_RETRIES 529s in a row.
OVERLOADED_LINE = {
    "type": "result",
    "subtype": "success",
    "is_error": True,
    "num_turns": 1,
    "session_id": "5b0e1c9e-0000-4000-8000-000000000002",
    "total_cost_usd": 0,
    "result": "API Error: 529 Overloaded. This is a server-side issue, usually temporary.",
    "usage": {"input_tokens": 0, "output_tokens": 0},
    "api_error_status": 529,
    "api_error_type": "overloaded_error",
    "terminal_reason": "api_error",
}


def _log(*objects: object, noise: str = "") -> str:
    lines = [json.dumps(o) for o in objects]
    return noise + "\n".join(lines) + "\n"


def test_result_line_facts_are_parsed_among_other_lines() -> None:
    init = {"type": "system", "subtype": "init", "session_id": "x"}
    log = _log(init, SUCCESS_LINE, noise="starting agent...\nnot json {\n")
    result = claude_code.parse_result(log + "[exit 0]\n")
    assert result == claude_code.AgentResult(
        is_error=False,
        subtype="success",
        session_id="5b0e1c9e-0000-4000-8000-000000000001",
        num_turns=4,
        input_tokens=48348,
        output_tokens=87,
        total_cost_usd=0.1951,
        result="NOTES.md is written.",
        terminal_reason="completed",
    )
    assert not result.failed_on_api


def test_no_result_line_means_none() -> None:
    assert claude_code.parse_result(_log({"type": "system", "subtype": "init"})) is None
    assert claude_code.parse_result("") is None


def test_the_last_result_line_wins() -> None:
    result = claude_code.parse_result(_log(SUCCESS_LINE, OVERLOADED_LINE))
    assert result is not None and result.is_error


def test_result_line_behind_a_terminal_prefix_is_still_found() -> None:
    result = claude_code.parse_result("\x1b[0m" + json.dumps(SUCCESS_LINE) + "\r\n")
    assert result is not None and result.num_turns == 4


def test_api_failure_reports_status_type_and_message() -> None:
    result = claude_code.parse_result(_log(OVERLOADED_LINE))
    assert result is not None
    assert result.is_error and result.failed_on_api
    assert result.api_error_status == 529
    assert result.api_error.startswith("API error 529 overloaded_error: API Error: 529 Overloaded")


def test_credit_exhaustion_and_dropped_connections_are_api_failures() -> None:
    credit = dict(
        OVERLOADED_LINE,
        api_error_status=400,
        api_error_type="invalid_request_error",
        result="Credit balance is too low",
    )
    dropped = dict(
        OVERLOADED_LINE,
        api_error_status=None,
        api_error_type=None,
        result="API Error: Connection dropped (ECONNRESET).",
    )
    credit_result = claude_code.parse_result(_log(credit))
    dropped_result = claude_code.parse_result(_log(dropped))
    assert credit_result is not None and dropped_result is not None
    assert credit_result.api_error == (
        "API error 400 invalid_request_error: Credit balance is too low"
    )
    assert dropped_result.api_error == "API Error: Connection dropped (ECONNRESET)."


def test_errors_that_are_not_the_apis_leave_the_reason_empty() -> None:
    max_turns = dict(
        SUCCESS_LINE, subtype="error_max_turns", is_error=True, terminal_reason="max_turns"
    )
    result = claude_code.parse_result(_log(max_turns))
    assert result is not None
    assert result.is_error and result.subtype == "error_max_turns"
    assert result.api_error == ""


def test_config_dir_is_private_and_answers_first_run_questions(tmp_path: Path) -> None:
    config_dir = tmp_path / "agents" / "alpha"
    project = tmp_path / "project"
    project.mkdir()
    key = "sk-ant-test-0123456789abcdefghijklmnop"
    claude_code.prepare_config_dir(config_dir, api_key=key, projects=[project])
    state = json.loads((config_dir / ".claude.json").read_text(encoding="utf-8"))
    assert stat.S_IMODE(config_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((config_dir / ".claude.json").stat().st_mode) == 0o600
    assert state["hasCompletedOnboarding"] is True
    assert state["customApiKeyResponses"]["approved"] == [key[-20:]]
    assert key not in json.dumps(state)
    assert state["projects"][str(project.resolve())]["hasTrustDialogAccepted"] is True


def test_preparing_again_keeps_what_claude_code_wrote(tmp_path: Path) -> None:
    claude_code.prepare_config_dir(tmp_path, api_key="k" * 30)
    state_path = tmp_path / ".claude.json"
    state = json.loads(state_path.read_text(encoding="utf-8"))
    state["userID"] = "abc"
    state["customApiKeyResponses"]["rejected"] = ["k" * 20]
    state_path.write_text(json.dumps(state), encoding="utf-8")
    claude_code.prepare_config_dir(tmp_path, api_key="k" * 30)
    again = json.loads(state_path.read_text(encoding="utf-8"))
    assert again["userID"] == "abc"
    assert again["customApiKeyResponses"] == {"approved": ["k" * 20], "rejected": []}


def test_corrupt_state_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / ".claude.json").write_text("{broken", encoding="utf-8")
    claude_code.prepare_config_dir(tmp_path)
    state = json.loads((tmp_path / ".claude.json").read_text(encoding="utf-8"))
    assert state["hasCompletedOnboarding"] is True


def test_environment_points_the_cli_at_the_api_with_bounded_retries(tmp_path: Path) -> None:
    env = claude_code.agent_environment(tmp_path, "http://127.0.0.1:9/", "sk-x", max_retries=1)
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9"
    assert env["ANTHROPIC_API_KEY"] == "sk-x"
    assert env["CLAUDE_CONFIG_DIR"] == str(tmp_path)
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert env["CLAUDE_CODE_MAX_RETRIES"] == "1"


def test_environment_leaves_unset_api_settings_to_the_inherited_ones(tmp_path: Path) -> None:
    env = claude_code.agent_environment(tmp_path, None, None)
    assert "ANTHROPIC_BASE_URL" not in env and "ANTHROPIC_API_KEY" not in env
    assert env["CLAUDE_CODE_MAX_RETRIES"] == str(claude_code.DEFAULT_MAX_RETRIES)


def test_default_command_is_headless_stream_json_and_resumable() -> None:
    command = claude_code.DEFAULT_COMMAND
    assert command[:2] == ("claude", "-p")
    assert not any("{" in argument for argument in command)
    assert claude_code.DEFAULT_STDIN == "{next_action}"
    assert "stream-json" in command and "--verbose" in command
    assert command[command.index("--permission-mode") + 1] == "acceptEdits"
    assert claude_code.resume_command("sid")[-2:] == ("--resume", "sid")
    assert claude_code.resume_arguments("sid") == ("--resume", "sid")

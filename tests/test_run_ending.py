"""Endings the real CLI cannot be made to produce on demand, from their result lines and codes.

The endings the real Claude Code CLI produces against the mock are driven in
``tests/runners/test_claude_endings.py``; these cover the rest of the kind.
"""

from __future__ import annotations

import json

import pytest

from sidekick.models import ProjectStatus
from sidekick.run_ending import describe

F = ProjectStatus.FAILED


def result_line(**fields: object) -> str:
    data = {"type": "result", "subtype": "success", "is_error": False, "num_turns": 1}
    data.update(fields)
    return json.dumps(data) + "\n"


def api_error(status: int | None, kind: str, text: str) -> str:
    return result_line(
        is_error=True,
        terminal_reason="api_error",
        api_error_status=status,
        api_error_type=kind,
        result=text,
    )


@pytest.mark.parametrize(
    ("code", "log", "status", "note"),
    [
        (
            1,
            api_error(429, "rate_limit_error", "API Error: 429 slow down"),
            F,
            "failed: rate limited by the API (429) after retries (API Error: 429 slow down)",
        ),
        (
            1,
            api_error(529, "overloaded_error", "API Error: 529 Overloaded"),
            F,
            "failed: the API is overloaded (529) after retries (API Error: 529 Overloaded)",
        ),
        (
            1,
            api_error(400, "invalid_request_error", "Your credit balance is too low"),
            F,
            "failed: the API account is out of credit (Your credit balance is too low): "
            "add credit, then set the row to Pending",
        ),
        (
            1,
            api_error(404, "not_found_error", "model: claude-nope"),
            F,
            "failed: the API refused the request (404, model: claude-nope)",
        ),
        (
            1,
            result_line(is_error=True, subtype="error_during_execution", errors=["tool crashed"]),
            F,
            "failed: Claude Code ended with an error (error_during_execution): tool crashed",
        ),
        (
            127,
            "sidekick: cannot start 'claude': [Errno 2] No such file\n",
            F,
            "failed: the agent's command was not found (exit 127): "
            "sidekick: cannot start 'claude': [Errno 2] No such file",
        ),
        (
            126,
            "sidekick: cannot start './a': [Errno 13] Permission denied\n",
            F,
            "failed: the agent's command could not be run (exit 126): "
            "sidekick: cannot start './a': [Errno 13] Permission denied",
        ),
        (
            75,
            "sidekick: not started\n",
            F,
            "failed: not started: another agent of this project was still running",
        ),
        (143, "working\n", F, "failed: the agent was killed by SIGTERM (exit 143): working"),
        (
            2,
            "Traceback...\nValueError: bad\n",
            F,
            "failed: exit 2: ValueError: bad",
        ),
        (0, "a script that prints no JSON\n", ProjectStatus.COMPLETE, "complete"),
        (
            0,
            result_line(num_turns=3, total_cost_usd=0.25),
            ProjectStatus.COMPLETE,
            "complete (3 turns, $0.2500)",
        ),
    ],
    ids=[
        "429",
        "529",
        "credit",
        "404",
        "error-subtype",
        "not-found",
        "not-executable",
        "locked",
        "sigterm",
        "plain-exit",
        "no-json",
        "success",
    ],
)
def test_each_ending_is_a_status_and_plain_words(
    code: int, log: str, status: ProjectStatus, note: str
) -> None:
    ending = describe(code, log)
    assert (ending.status, ending.note) == (status, note)
    assert "{" not in ending.note


def test_many_denials_name_the_first_few_and_count_the_rest() -> None:
    denials = [{"tool_name": "Bash", "tool_input": {"command": f"step {i}"}} for i in range(5)] + [
        {"tool_name": "WebFetch", "tool_input": {"url": "x"}}
    ]
    ending = describe(0, result_line(permission_denials=denials))
    assert ending.status is ProjectStatus.BLOCKED
    assert ending.note.startswith(
        "complete · 6 tool calls denied (Bash, WebFetch: step 0; step 1; step 2; 3 more): "
        "allow Bash, WebFetch in the agent profile"
    )


def test_a_long_command_in_a_denial_is_cut_not_the_sentence() -> None:
    denials = [{"tool_name": "Bash", "tool_input": {"command": "x" * 500}}]
    note = describe(0, result_line(permission_denials=denials)).note
    assert note.endswith("and set the row back to Pending") and len(note) < 200

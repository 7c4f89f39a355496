"""How an agent's run ended, in words: the note in Last Update and in ``sidekick runs``.

Every way a Claude Code run can end is read from its exit status and the
``type: result`` line it printed (see :mod:`sidekick.claude_code`), and said in
one plain sentence that starts with what happened and ends with what to do:

- success: ``complete``, with the turns and the cost;
- success with tool calls Claude Code refused (``permission_denials``, for
  example Bash under ``acceptEdits`` without ``--allowedTools``): the work the
  agent meant to do did not happen, so the row is **Blocked**, never plain
  Complete: ``complete · 2 tool calls denied (Bash: git push origin HEAD; ...)``;
- the turn limit (``error_max_turns``), other ``error_*`` subtypes;
- API errors by kind: spent credit, a refused key (401), a forbidden model
  (403), a prompt too long, rate limits (429), overload (529), server errors
  (5xx), an unreachable API;
- no result at all: an option the CLI rejects (it prints ``error: ...`` and
  exits 1), a command that cannot be found or run, a signal (a crash, a kill),
  a start refused because another agent of the project held its lock.

Never raw JSON: the words are built from the result's fields, and the agent's
own message is quoted only where it is the explanation.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass

from sidekick.claude_code import AgentResult, Denial, parse_result
from sidekick.models import ProjectStatus
from sidekick.runners.agent_wrapper import (
    EXIT_LOCKED,
    EXIT_NOT_EXECUTABLE,
    EXIT_NOT_FOUND,
    SIGNAL_EXIT_BASE,
)

logger = logging.getLogger(__name__)

QUOTE_CHARS = 120
DETAIL_CHARS = 40
DENIALS_SHOWN = 3
CREDIT_WORDS = ("credit balance", "billing", "purchase credits")
_CLI_ERROR_PREFIX = "error:"


@dataclass(frozen=True)
class RunEnding:
    """The row's new status and the sentence that says why."""

    status: ProjectStatus
    note: str


def describe(exit_code: int, log_text: str) -> RunEnding:
    """The ending of a run from its exit status and everything it printed."""
    return describe_result(exit_code, parse_result(log_text), log_text)


def describe_result(exit_code: int, facts: AgentResult | None, log_text: str) -> RunEnding:
    if facts is None:
        return _without_result(exit_code, log_text)
    failure = _result_failure(facts)
    if failure:
        return RunEnding(ProjectStatus.FAILED, failure)
    if exit_code != 0:
        return _without_result(exit_code, log_text)
    if facts.denials:
        return RunEnding(ProjectStatus.BLOCKED, _denied(facts))
    return RunEnding(ProjectStatus.COMPLETE, "complete" + _spent(facts))


def _result_failure(facts: AgentResult) -> str:
    """Why the result line says the run failed, or "" when it does not."""
    if facts.api_error or facts.terminal_reason in ("api_error", "prompt_too_long"):
        return f"failed: {_api_failure(facts)}"
    if facts.subtype == "error_max_turns" or facts.terminal_reason == "max_turns":
        return _max_turns(facts)
    if facts.is_error or facts.subtype.startswith("error"):
        return _other_error(facts)
    return ""


def _spent(facts: AgentResult) -> str:
    parts = []
    if facts.num_turns:
        parts.append(f"{facts.num_turns} turn{'s' if facts.num_turns != 1 else ''}")
    if facts.total_cost_usd:
        parts.append(f"${facts.total_cost_usd:.4f}")
    return f" ({', '.join(parts)})" if parts else ""


def _denied(facts: AgentResult) -> str:
    count = len(facts.denials)
    tools = sorted({d.tool for d in facts.denials})
    shown = "; ".join(_denial_text(d) for d in facts.denials[:DENIALS_SHOWN])
    more = f"; {count - DENIALS_SHOWN} more" if count > DENIALS_SHOWN else ""
    return (
        f"complete · {count} tool call{'s' if count != 1 else ''} denied "
        f"({', '.join(tools)}: {shown}{more}): allow {', '.join(tools)} in the agent profile "
        "(--allowedTools) and set the row back to Pending"
    )


def _denial_text(denial: Denial) -> str:
    return _quote(denial.detail, DETAIL_CHARS) if denial.detail else denial.tool


def _max_turns(facts: AgentResult) -> str:
    said = facts.errors[0] if facts.errors else "reached the maximum number of turns"
    turns = f" after {facts.num_turns} turns" if facts.num_turns else ""
    return (
        f"stopped at the turn limit{turns} ({said.rstrip('.')}): "
        "raise --max-turns in the agent profile or split the Next Action"
    )


def _other_error(facts: AgentResult) -> str:
    said = "; ".join(facts.errors) or facts.result or facts.subtype or "no reason given"
    return f"failed: Claude Code ended with an error ({facts.subtype or 'error'}): {_quote(said)}"


def _api_failure(facts: AgentResult) -> str:
    status = facts.api_error_status
    message = _quote(facts.result)
    lowered = facts.result.casefold()
    if any(words in lowered for words in CREDIT_WORDS):
        return (
            f"the API account is out of credit ({message}): add credit, then set the row to Pending"
        )
    if facts.terminal_reason == "prompt_too_long":
        return f"the prompt is too long for the model ({status or 400}): shorten the Next Action"
    if status is None:
        return f"the API could not be reached ({message})"
    return _by_status(status, message)


def _by_status(status: int, message: str) -> str:
    if status == 401:
        return f"the API refused the key (401, {message}): check api.key_file"
    if status == 403:
        return f"the API key may not do this (403, {message})"
    if status == 429:
        return f"rate limited by the API (429) after retries ({message})"
    if status == 529:
        return f"the API is overloaded (529) after retries ({message})"
    if status >= 500:
        return f"the API failed with a server error ({status}, {message})"
    return f"the API refused the request ({status}, {message})"


def _without_result(exit_code: int, log_text: str) -> RunEnding:
    if exit_code == 0:
        return RunEnding(ProjectStatus.COMPLETE, "complete")
    last = _last_line(log_text)
    return RunEnding(ProjectStatus.FAILED, f"failed: {_no_result_reason(exit_code, last)}")


def _no_result_reason(exit_code: int, last: str) -> str:
    said = f": {_quote(last)}" if last else ""
    if exit_code == EXIT_LOCKED:
        return "not started: another agent of this project was still running"
    if exit_code == EXIT_NOT_FOUND:
        return f"the agent's command was not found (exit 127){said}"
    if exit_code == EXIT_NOT_EXECUTABLE:
        return f"the agent's command could not be run (exit 126){said}"
    if exit_code > SIGNAL_EXIT_BASE:
        name = _signal_name(exit_code - SIGNAL_EXIT_BASE)
        return f"the agent was killed by {name} (exit {exit_code}){said}"
    if last.casefold().startswith(_CLI_ERROR_PREFIX):
        problem = last[len(_CLI_ERROR_PREFIX) :].strip()
        return (
            f"the agent refused its command line ({_quote(problem)}): "
            "fix the agent profile's command"
        )
    # A script's own failure: its code and its last words, as a shell would say them.
    return f"exit {exit_code}{said}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_line(log_text: str) -> str:
    return next((line.strip() for line in reversed(log_text.splitlines()) if line.strip()), "")


def _quote(text: str, limit: int = QUOTE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

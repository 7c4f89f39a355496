"""What the daemon needs to run the real Claude Code CLI as a headless agent.

Facts checked against Claude Code 2.1.330 (``docker/claude-code.version``):

- ``claude -p`` runs with an empty ``CLAUDE_CONFIG_DIR``: print mode shows no
  onboarding, trust or API-key dialog. Interactive ``claude`` (a person
  attaching to an agent's config dir) first tries to reach api.anthropic.com
  for onboarding, then asks whether to use ``ANTHROPIC_API_KEY`` and whether to
  trust the folder; :func:`prepare_config_dir` pre-answers all three.
- ``--permission-mode acceptEdits`` lets Write and Edit through but denies
  most Bash commands in print mode (they end up in ``permission_denials``);
  ``bypassPermissions`` refuses to start as root. ``acceptEdits`` plus
  ``--allowedTools Bash`` writes, edits and runs commands, as root too.
- ``CLAUDE_CODE_MAX_RETRIES`` bounds its retries of 429/529/5xx and dropped
  connections; with 2 a 529 storm ends the run in about 2.5 s with exit 1.
- The last stream-json line is ``{"type": "result", ...}``. An API failure
  still says ``"subtype": "success"`` but ``"is_error": true``, with
  ``"terminal_reason": "api_error"``, ``api_error_status`` (529, 429, 400 for
  "credit balance too low", null for a dropped connection),
  ``api_error_type`` and the message in ``result``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PERMISSION_MODE = "acceptEdits"
# The prompt goes on stdin, never in argv: as an argument, a prompt that starts
# with "-" ("- fix the flaky login test") is an unknown option to the CLI
# ("error: unknown option", exit 1), one that follows a variadic option such as
# --allowedTools is taken as one more tool, and one over 128 KiB cannot be exec'd.
# ``claude -p`` with no prompt argument reads the whole of stdin as the prompt.
DEFAULT_COMMAND: tuple[str, ...] = (
    "claude",
    "-p",
    "--output-format",
    "stream-json",
    "--verbose",
    "--permission-mode",
    PERMISSION_MODE,
    "--allowedTools",
    "Bash",
)
DEFAULT_STDIN = "{next_action}"
DEFAULT_MAX_RETRIES = 2
STATE_FILE = ".claude.json"
# Claude Code remembers an approved ANTHROPIC_API_KEY by its last 20 characters.
APPROVED_KEY_CHARS = 20
REASON_CHARS = 300


def resume_arguments(session_id: str) -> tuple[str, ...]:
    """The arguments that make a Claude Code command continue an earlier session."""
    return ("--resume", session_id)


def resume_command(session_id: str, template: tuple[str, ...] = DEFAULT_COMMAND) -> tuple[str, ...]:
    """The default command, continuing ``session_id`` instead of starting afresh."""
    return (*template, *resume_arguments(session_id))


# --- the config directory ------------------------------------------------------------


def prepare_config_dir(
    path: Path, *, api_key: str | None = None, projects: Iterable[Path] = ()
) -> None:
    """Write the per-agent ``CLAUDE_CONFIG_DIR`` state so no first-run dialog can block.

    Keeps whatever Claude Code itself wrote there before (sessions, its own
    keys in ``.claude.json``) and only sets: onboarding done, the API key
    approved (when given) and each project folder trusted.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    state_path = path / STATE_FILE
    state = _read_state(state_path)
    merged = _with_onboarding(state, api_key, projects)
    if merged != state or not state_path.exists():
        _write_atomically(state_path, json.dumps(merged, indent=2) + "\n")
        logger.debug("prepared Claude Code config dir %s", path)


def _read_state(state_path: Path) -> dict[str, Any]:
    try:
        data = json.loads(state_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError:
        logger.warning("%s is not valid JSON; writing a fresh one", state_path)
        return {}
    return data if isinstance(data, dict) else {}


def _with_onboarding(
    state: Mapping[str, Any], api_key: str | None, projects: Iterable[Path]
) -> dict[str, Any]:
    merged = json.loads(json.dumps(state))
    merged["hasCompletedOnboarding"] = True
    if api_key:
        _approve_key(merged, api_key[-APPROVED_KEY_CHARS:])
    known = merged.setdefault("projects", {})
    for project in projects:
        entry = known.setdefault(str(project.resolve()), {})
        entry["hasTrustDialogAccepted"] = True
    return dict(merged)


def _approve_key(state: dict[str, Any], tail: str) -> None:
    responses = state.setdefault("customApiKeyResponses", {})
    approved = responses.setdefault("approved", [])
    responses.setdefault("rejected", [])
    if tail not in approved:
        approved.append(tail)
    if tail in responses["rejected"]:
        responses["rejected"].remove(tail)


def _write_atomically(target: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(prefix=target.name, suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# --- the environment -----------------------------------------------------------------


def agent_environment(
    config_dir: Path,
    base_url: str | None,
    api_key: str | None,
    *,
    max_retries: int = DEFAULT_MAX_RETRIES,
) -> dict[str, str]:
    """Variables to add to the inherited environment for one headless run.

    A None ``base_url`` or ``api_key`` leaves that variable to the inherited
    environment (Anthropic's API, a key set elsewhere).
    """
    env = {
        "CLAUDE_CONFIG_DIR": str(config_dir),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_MAX_RETRIES": str(max_retries),
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }
    if base_url:
        env["ANTHROPIC_BASE_URL"] = base_url.rstrip("/")
    if api_key:
        env["ANTHROPIC_API_KEY"] = api_key
    return env


# --- the result line -----------------------------------------------------------------


@dataclass(frozen=True)
class AgentResult:
    """The facts of a run's final ``type: result`` line."""

    is_error: bool
    subtype: str
    session_id: str
    num_turns: int | None
    input_tokens: int | None
    output_tokens: int | None
    total_cost_usd: float | None
    result: str
    api_error: str = ""
    api_error_status: int | None = None
    terminal_reason: str = ""
    errors: tuple[str, ...] = ()
    denials: tuple[Denial, ...] = ()

    @property
    def failed_on_api(self) -> bool:
        return bool(self.api_error)


@dataclass(frozen=True)
class Denial:
    """A tool call Claude Code refused to run (``permission_denials``): which tool, what for."""

    tool: str
    detail: str = ""


def _denials(raw: Any) -> tuple[Denial, ...]:
    if not isinstance(raw, list):
        return ()
    found = []
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        tool_input = item.get("tool_input")
        detail = ""
        if isinstance(tool_input, Mapping):
            detail = str(tool_input.get("command") or tool_input.get("file_path") or "")
        found.append(Denial(str(item.get("tool_name") or "a tool"), " ".join(detail.split())))
    return tuple(found)


def _texts(raw: Any) -> tuple[str, ...]:
    return tuple(" ".join(str(item).split()) for item in raw) if isinstance(raw, list) else ()


def _json_lines(log_text: str) -> Iterator[dict[str, Any]]:
    for line in log_text.splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            data = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(data, dict):
            yield data


def parse_result(log_text: str) -> AgentResult | None:
    """The last ``type: result`` line of stream-json output, or None when there is none.

    Lines that are not JSON objects (a wrapper's own output, tmux noise) are skipped.
    """
    last: dict[str, Any] | None = None
    for data in _json_lines(log_text):
        if data.get("type") == "result":
            last = data
    return None if last is None else _result_from(last)


def _result_from(data: Mapping[str, Any]) -> AgentResult:
    raw_usage = data.get("usage")
    usage: Mapping[str, Any] = raw_usage if isinstance(raw_usage, Mapping) else {}
    status = _int(data.get("api_error_status"))
    return AgentResult(
        is_error=bool(data.get("is_error")),
        subtype=str(data.get("subtype") or ""),
        session_id=str(data.get("session_id") or ""),
        num_turns=_int(data.get("num_turns")),
        input_tokens=_input_tokens(usage),
        output_tokens=_int(usage.get("output_tokens")),
        total_cost_usd=_float(data.get("total_cost_usd")),
        result=str(data.get("result") or ""),
        api_error=api_error_reason(data),
        api_error_status=status,
        terminal_reason=str(data.get("terminal_reason") or ""),
        errors=_texts(data.get("errors")),
        denials=_denials(data.get("permission_denials")),
    )


def _input_tokens(usage: Mapping[str, Any]) -> int | None:
    # Cached prompt tokens are input the run paid for too.
    parts = [
        _int(usage.get(name))
        for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    ]
    counted = [p for p in parts if p is not None]
    return sum(counted) if counted else None


def api_error_reason(data: Mapping[str, Any]) -> str:
    """A short reason when the run ended because of the API, else ""."""
    if not data.get("is_error"):
        return ""
    status = _int(data.get("api_error_status"))
    text = " ".join(str(data.get("result") or "").split())
    if status is None and data.get("terminal_reason") != "api_error":
        return text[:REASON_CHARS] if text.startswith("API Error") else ""
    label = " ".join(str(p) for p in (status, data.get("api_error_type")) if p)
    reason = f"API error {label}: {text}" if label else text or "API error"
    return reason[:REASON_CHARS]


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)

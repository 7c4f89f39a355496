"""Scripted conversations for the mock API, loaded from YAML.

A scenario file holds a list of scenarios; the first whose ``match`` holds
answers a request (a scenario without ``match`` matches everything, so put
catch-alls last). A request may also name its scenario with the
``x-mock-scenario`` header, and the server may force one for every request.

.. code-block:: yaml

    scenarios:
      - name: write-then-edit
        match:                    # every condition given must hold
          user: "notes.txt"       # substring of the latest prompt (case-insensitive)
          # user_regex: "^write" # re.search on the latest prompt
          # system: "Claude Code" / system_regex: ... on the system prompt
          # model: "haiku"        # substring of the model name
        steps:                    # one assistant turn each, in order
          - text: "Creating notes.txt."
            tool_use:             # a mapping or a list of them
              name: Write
              input: {file_path: "{{cwd}}/notes.txt", content: "first\\n"}
          - tool_use: {name: Bash, input: {command: "ls"}}
          - text: "Done."
      - name: storm
        match: {user: "overload me"}
        steps:
          - fault: overloaded     # rate_limit | overloaded | api_error | cut_stream
                                  # | invalid_request (400) | permission (403)
            times: 3              # fail this often per conversation, then reply (default: always)
            retry_after: 1        # seconds, sent with rate_limit
            delay_ms: 200         # wait before the first byte (also without a fault)

Position is found from the request alone, so concurrent conversations never
share state: the *latest prompt* is the last user message that carries text
(``<system-reminder>`` blocks aside) and no ``tool_result``; the step to play is
the number of assistant messages after it. After the last step the scenario
answers a short closing text with ``end_turn``.

Strings in ``text`` and tool inputs may use ``{{cwd}}`` (the working directory
Claude Code states in its prompt, else "."), ``{{model}}`` and ``{{prompt}}``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sidekick.errors import SidekickError

logger = logging.getLogger(__name__)

FAULTS = frozenset(
    {"rate_limit", "overloaded", "api_error", "invalid_request", "permission", "cut_stream"}
)
DEFAULT_FILE = "default.yaml"
_CWD_LINE = re.compile(r"Primary working directory:\s*(\S[^\n]*)")
_PLACEHOLDER = re.compile(r"\{\{\s*(cwd|model|prompt)\s*\}\}")
_REMINDER = "<system-reminder>"


@dataclass(eq=False)
class ScenarioError(SidekickError):
    """A scenario file cannot be used: names the file, the place in it and the problem."""

    file: str
    where: str
    problem: str

    def message(self) -> str:
        place = f"{self.file}: {self.where}" if self.where else self.file
        return f"{place}: {self.problem}"


@dataclass(frozen=True)
class ToolUse:
    """A scripted tool call; ``input`` strings may hold placeholders."""

    name: str
    input: Mapping[str, Any]


@dataclass(frozen=True)
class Step:
    """One scripted assistant turn, or a fault served in its place."""

    text: str = ""
    tool_uses: tuple[ToolUse, ...] = ()
    stop_reason: str = ""
    fault: str = ""
    times: int | None = None
    retry_after: float = 1.0
    delay_ms: float = 0.0
    error_message: str = ""

    @property
    def effective_stop_reason(self) -> str:
        if self.stop_reason:
            return self.stop_reason
        return "tool_use" if self.tool_uses else "end_turn"


@dataclass(frozen=True)
class Match:
    """Conditions on a request; an empty match holds for every request."""

    user: str = ""
    user_regex: re.Pattern[str] | None = None
    system: str = ""
    system_regex: re.Pattern[str] | None = None
    model: str = ""

    def holds(self, prompt: str, system: str, model: str) -> bool:
        return (
            _contains(prompt, self.user)
            and _searches(prompt, self.user_regex)
            and _contains(system, self.system)
            and _searches(system, self.system_regex)
            and _contains(model, self.model)
        )


def _contains(text: str, wanted: str) -> bool:
    return not wanted or wanted.casefold() in text.casefold()


def _searches(text: str, pattern: re.Pattern[str] | None) -> bool:
    return pattern is None or pattern.search(text) is not None


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]
    match: Match = field(default_factory=Match)

    def step(self, index: int) -> Step:
        """The step to play at a position; past the script, a closing text."""
        if index < len(self.steps):
            return self.steps[index]
        return Step(text=f"Scenario {self.name!r} is finished.")


FALLBACK = Scenario("fallback", (Step(text="This is the mock Claude API. Nothing more to do."),))


@dataclass(frozen=True)
class ScenarioBook:
    """The scenarios of one file, in match order."""

    scenarios: tuple[Scenario, ...]
    source: str = ""

    def named(self, name: str) -> Scenario | None:
        for scenario in self.scenarios:
            if scenario.name == name:
                return scenario
        return None

    def choose(self, prompt: str, system: str, model: str) -> Scenario:
        for scenario in self.scenarios:
            if scenario.match.holds(prompt, system, model):
                return scenario
        return FALLBACK


# --- reading the request ------------------------------------------------------


@dataclass(frozen=True)
class Position:
    """Where a request stands in its conversation."""

    prompt: str
    system: str
    step: int
    cwd: str


def text_of(content: Any, *, skip_reminders: bool = False) -> str:
    """The text blocks of a message content (a string or a list of blocks), joined."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = [_block_text(b) for b in content if isinstance(b, Mapping)]
    if skip_reminders:
        parts = [p for p in parts if not p.lstrip().startswith(_REMINDER)]
    return "\n".join(p for p in parts if p)


def _block_text(block: Mapping[str, Any]) -> str:
    return str(block.get("text", "")) if block.get("type") == "text" else ""


def _has_tool_result(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(b, Mapping) and b.get("type") == "tool_result" for b in content
    )


def _is_prompt(message: Any) -> bool:
    if not isinstance(message, Mapping) or message.get("role") != "user":
        return False
    content = message.get("content")
    return not _has_tool_result(content) and bool(text_of(content, skip_reminders=True))


def _anchor(messages: Sequence[Any]) -> int:
    for index in range(len(messages) - 1, -1, -1):
        if _is_prompt(messages[index]):
            return index
    return -1


def _system_text(body: Mapping[str, Any]) -> str:
    # Recent Claude Code versions also send part of their system prompt as
    # role "system" messages inside ``messages``.
    parts = [text_of(body.get("system", ""))]
    for message in body.get("messages") or ():
        if isinstance(message, Mapping) and message.get("role") == "system":
            parts.append(text_of(message.get("content")))
    return "\n".join(p for p in parts if p)


def _find_cwd(system: str, messages: Sequence[Any]) -> str:
    found = _CWD_LINE.search(system)
    if found is None:
        for message in messages:
            if isinstance(message, Mapping):
                found = _CWD_LINE.search(text_of(message.get("content")))
                if found is not None:
                    break
    return found.group(1).strip() if found else "."


def locate(body: Mapping[str, Any]) -> Position:
    """The latest prompt, the system text and the step a request is at."""
    messages = body.get("messages") or []
    anchor = _anchor(messages)
    prompt = text_of(messages[anchor].get("content"), skip_reminders=True) if anchor >= 0 else ""
    later = messages[anchor + 1 :]
    step = sum(1 for m in later if isinstance(m, Mapping) and m.get("role") == "assistant")
    system = _system_text(body)
    return Position(prompt=prompt, system=system, step=step, cwd=_find_cwd(system, messages))


# --- rendering a step ---------------------------------------------------------


def render(value: Any, values: Mapping[str, str]) -> Any:
    """``value`` with ``{{name}}`` placeholders filled, recursively through lists and maps."""
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, Mapping):
        return {k: render(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, values) for v in value]
    return value


# --- loading ------------------------------------------------------------------


class _Reader:
    """Turns parsed YAML into scenarios, naming the place of every problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> ScenarioError:
        return ScenarioError(self.source, where, problem)

    def book(self, data: Any) -> ScenarioBook:
        items = data.get("scenarios") if isinstance(data, Mapping) else None
        if not isinstance(items, list) or not items:
            raise self.fail("scenarios", "expected a non-empty list of scenarios")
        scenarios = tuple(self.scenario(item, f"scenarios[{i}]") for i, item in enumerate(items))
        self.check_unique(scenarios)
        return ScenarioBook(scenarios, self.source)

    def check_unique(self, scenarios: Sequence[Scenario]) -> None:
        seen: set[str] = set()
        for index, scenario in enumerate(scenarios):
            if scenario.name in seen:
                raise self.fail(f"scenarios[{index}].name", f"duplicate name {scenario.name!r}")
            seen.add(scenario.name)

    def scenario(self, item: Any, where: str) -> Scenario:
        if not isinstance(item, Mapping):
            raise self.fail(where, "expected a mapping with name and steps")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise self.fail(f"{where}.name", "expected a non-empty string")
        steps = item.get("steps")
        if not isinstance(steps, list) or not steps:
            raise self.fail(f"{where}.steps", "expected a non-empty list of steps")
        parsed = tuple(self.step(s, f"{where}.steps[{i}]") for i, s in enumerate(steps))
        return Scenario(name, parsed, self.match(item.get("match") or {}, f"{where}.match"))

    def match(self, item: Any, where: str) -> Match:
        if not isinstance(item, Mapping):
            raise self.fail(where, "expected a mapping")
        self.known_keys(item, where, {"user", "user_regex", "system", "system_regex", "model"})
        return Match(
            user=self.string(item, "user", where),
            user_regex=self.regex(item, "user_regex", where),
            system=self.string(item, "system", where),
            system_regex=self.regex(item, "system_regex", where),
            model=self.string(item, "model", where),
        )

    def known_keys(self, item: Mapping[str, Any], where: str, known: set[str]) -> None:
        unknown = sorted(set(item) - known)
        if unknown:
            raise self.fail(where, f"unknown keys {unknown} (known: {sorted(known)})")

    def string(self, item: Mapping[str, Any], key: str, where: str) -> str:
        value = item.get(key, "")
        if not isinstance(value, str):
            raise self.fail(f"{where}.{key}", "expected a string")
        return value

    def regex(self, item: Mapping[str, Any], key: str, where: str) -> re.Pattern[str] | None:
        text = self.string(item, key, where)
        if not text:
            return None
        try:
            return re.compile(text)
        except re.error as exc:
            raise self.fail(f"{where}.{key}", f"bad regular expression: {exc}") from None

    def number(self, item: Mapping[str, Any], key: str, where: str, default: float) -> float:
        value = item.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.fail(f"{where}.{key}", "expected a number >= 0")
        return float(value)

    def step(self, item: Any, where: str) -> Step:
        if not isinstance(item, Mapping):
            raise self.fail(where, "expected a mapping")
        self.known_keys(item, where, _STEP_KEYS)
        step = Step(
            text=self.string(item, "text", where),
            tool_uses=self.tool_uses(item.get("tool_use"), f"{where}.tool_use"),
            stop_reason=self.string(item, "stop_reason", where),
            fault=self.fault(item, where),
            times=self.times(item, where),
            retry_after=self.number(item, "retry_after", where, 1.0),
            delay_ms=self.number(item, "delay_ms", where, 0.0),
            error_message=self.string(item, "message", where),
        )
        if not (step.text or step.tool_uses or step.fault):
            raise self.fail(where, "a step needs text, tool_use or fault")
        return step

    def fault(self, item: Mapping[str, Any], where: str) -> str:
        fault = self.string(item, "fault", where)
        if fault and fault not in FAULTS:
            raise self.fail(f"{where}.fault", f"unknown fault {fault!r} (known: {sorted(FAULTS)})")
        return fault

    def times(self, item: Mapping[str, Any], where: str) -> int | None:
        value = item.get("times")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(f"{where}.times", "expected an integer >= 1")
        return value

    def tool_uses(self, value: Any, where: str) -> tuple[ToolUse, ...]:
        if value is None:
            return ()
        items = value if isinstance(value, list) else [value]
        return tuple(self.tool_use(v, f"{where}[{i}]") for i, v in enumerate(items))

    def tool_use(self, item: Any, where: str) -> ToolUse:
        if not isinstance(item, Mapping):
            raise self.fail(where, "expected a mapping with name and input")
        name = self.string(item, "name", where)
        tool_input = item.get("input", {})
        if not name or not isinstance(tool_input, Mapping):
            raise self.fail(where, "expected a non-empty name and a mapping as input")
        return ToolUse(name, dict(tool_input))


_STEP_KEYS = {
    "text",
    "tool_use",
    "stop_reason",
    "fault",
    "times",
    "retry_after",
    "delay_ms",
    "message",
}


def parse(text: str, source: str = "<scenarios>") -> ScenarioBook:
    """Scenarios from YAML text; raises ScenarioError naming the place of a problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(source, "", f"not valid YAML: {exc}") from None
    return _Reader(source).book(data)


def load(path: Path | None = None) -> ScenarioBook:
    """Scenarios from a file, or the packaged default scenarios when path is None."""
    if path is None:
        return parse(packaged(DEFAULT_FILE), f"sidekick.mock_claude/scenarios/{DEFAULT_FILE}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(path), "", f"cannot read: {exc.strerror or exc}") from None
    return parse(text, str(path))


def packaged(name: str) -> str:
    """The text of a scenario file shipped inside the package."""
    return resources.files(__package__).joinpath("scenarios", name).read_text(encoding="utf-8")


def packaged_names() -> Iterator[str]:
    """Names of the scenario files shipped inside the package."""
    folder = resources.files(__package__).joinpath("scenarios")
    return (entry.name for entry in folder.iterdir() if entry.name.endswith(".yaml"))

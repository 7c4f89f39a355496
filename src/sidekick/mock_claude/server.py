"""The aiohttp application that speaks the Anthropic Messages API.

Routes: ``POST /v1/messages`` (``?beta=true`` too; JSON or SSE when
``stream`` is true), ``POST /v1/messages/count_tokens``, ``GET /v1/models``,
``GET /v1/models/{id}``, and the mock's own ``GET /stats`` and ``GET /health``.
Every error is answered in the API's shape,
``{"type": "error", "error": {"type": ..., "message": ...}}``.

Request headers the mock understands besides the API's own:

- ``x-mock-scenario: NAME`` plays that scenario, whatever the prompt.
- ``x-mock-fault: rate_limit|overloaded|api_error|invalid_request|permission|cut_stream``
  fails this request.
- ``x-mock-retry-after: SECONDS`` the ``retry-after`` of a ``rate_limit`` fault.
- ``x-mock-delay-ms: MS`` waits that long before the first byte.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from sidekick.errors import SidekickError
from sidekick.mock_claude import accounting, scenarios
from sidekick.mock_claude.scenarios import Scenario, ScenarioBook, Step

logger = logging.getLogger(__name__)

CREDIT_MESSAGE = (
    "Your credit balance is too low to access the Anthropic API. "
    "Please go to Plans & Billing to upgrade or purchase credits."
)
MAX_BODY_BYTES = 64 * 1024 * 1024
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_FAULT_STATUS = {
    "rate_limit": 429,
    "overloaded": 529,
    "api_error": 500,
    "invalid_request": 400,
    "permission": 403,
}
_FAULT_MESSAGES = {
    "rate_limit": "Number of request tokens has exceeded your per-minute rate limit (mock)",
    "overloaded": "Overloaded",
    "api_error": "Internal server error (mock)",
    "invalid_request": "prompt is too long: 250000 tokens > 200000 maximum (mock)",
    "permission": "Your API key does not have permission to use the specified resource (mock)",
}
MODELS = (
    ("claude-opus-5-5", "Claude Opus 5.5"),
    ("claude-sonnet-5-5", "Claude Sonnet 5.5"),
    ("claude-haiku-5-5", "Claude Haiku 5.5"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5"),
)
TEXT_CHUNK_CHARS = 24
JSON_CHUNK_CHARS = 48
FAULT_MEMORY = 10_000


@dataclass(eq=False)
class ApiFailure(SidekickError):
    """A request answered with an API error instead of a reply."""

    status: int
    detail: str
    retry_after: float | None = None

    @property
    def kind(self) -> str:
        return _ERROR_TYPES.get(self.status, "api_error")

    def message(self) -> str:
        return f"{self.status} {self.kind}: {self.detail}"


@dataclass(frozen=True)
class MockSettings:
    """How the mock behaves; every field has a command-line option and an env var."""

    api_keys: frozenset[str] = frozenset()
    scenario: str = ""
    default_budget_usd: float | None = None
    key_budgets: Mapping[str, float] = field(default_factory=dict)
    budget_status: int = 400
    event_delay_ms: float = 0.0


@dataclass
class FaultMemory:
    """How often a limited fault (``times: N``) has fired, per conversation and step."""

    limit: int = FAULT_MEMORY
    _fired: OrderedDict[tuple[str, ...], int] = field(default_factory=OrderedDict)

    def should_fire(self, key: tuple[str, ...], times: int | None) -> bool:
        if times is None:
            return True
        fired = self._fired.get(key, 0)
        if fired >= times:
            return False
        self._fired[key] = fired + 1
        self._fired.move_to_end(key)
        while len(self._fired) > self.limit:
            self._fired.popitem(last=False)
        return True


@dataclass
class MockState:
    """Everything the handlers share."""

    book: ScenarioBook
    settings: MockSettings
    ledger: accounting.Ledger
    faults: FaultMemory = field(default_factory=FaultMemory)
    started: float = field(default_factory=time.monotonic)
    ids: Iterator[int] = field(default_factory=itertools.count)

    def next_id(self, prefix: str) -> str:
        return f"{prefix}_mock{os.getpid():x}{next(self.ids):012x}"


STATE: web.AppKey[MockState] = web.AppKey("mock_state", MockState)


def key_label(key: str) -> str:
    """How a key shows in /stats and logs: short keys whole, long ones masked."""
    return key if len(key) <= 12 else f"{key[:4]}...{key[-4:]}"


# --- request checks -------------------------------------------------------------


def api_key_of(request: web.Request) -> str:
    key = request.headers.get("x-api-key", "")
    if not key:
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            key = auth[7:].strip()
    return key


def check_auth(request: web.Request, settings: MockSettings) -> str:
    """The caller's key; 401 when it is missing or not one of the accepted keys."""
    key = api_key_of(request)
    request["key"] = key
    if not key:
        raise ApiFailure(401, "x-api-key header is required")
    if settings.api_keys and key not in settings.api_keys:
        raise ApiFailure(401, "invalid x-api-key")
    return key


def check_version(request: web.Request) -> None:
    version = request.headers.get("anthropic-version", "")
    if not version:
        raise ApiFailure(400, "anthropic-version: header is required")
    if not _VERSION.match(version):
        raise ApiFailure(400, f"anthropic-version: invalid version {version!r}")


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json(loads=json.loads)
    except ValueError as exc:
        raise ApiFailure(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiFailure(400, "request body must be a JSON object")
    return body


def check_message_body(body: Mapping[str, Any], *, needs_max_tokens: bool = True) -> None:
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ApiFailure(400, "model: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiFailure(400, "messages: Field required (a non-empty list)")
    max_tokens = body.get("max_tokens")
    if needs_max_tokens and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise ApiFailure(400, "max_tokens: Field required (an integer)")


async def admitted(request: web.Request) -> tuple[MockState, str, dict[str, Any]]:
    """State, key and body of a Messages API request that passed the checks."""
    state = request.app[STATE]
    key = check_auth(request, state.settings)
    check_version(request)
    return state, key, await json_body(request)


# --- choosing and playing a step ------------------------------------------------------


@dataclass(frozen=True)
class Play:
    """What one request gets: the scenario, the step and the rendered reply."""

    scenario: Scenario
    step: Step
    position: scenarios.Position
    content: tuple[dict[str, Any], ...]


def choose_scenario(request: web.Request, state: MockState, pos: scenarios.Position) -> Scenario:
    name = request.headers.get("x-mock-scenario", "") or state.settings.scenario
    if not name:
        return state.book.choose(pos.prompt, pos.system, str(request.get("model", "")))
    found = state.book.named(name)
    if found is None:
        raise ApiFailure(400, f"unknown mock scenario {name!r}")
    return found


def _header_number(request: web.Request, name: str) -> float | None:
    raw = request.headers.get(name)
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise ApiFailure(400, f"{name}: expected a number, got {raw!r}") from None


def header_overrides(request: web.Request, step: Step) -> Step:
    """The step with the faults and delay asked for by request headers."""
    fault = request.headers.get("x-mock-fault", "")
    if fault and fault not in scenarios.FAULTS:
        raise ApiFailure(400, f"x-mock-fault: unknown fault {fault!r}")
    if fault:
        step = replace(step, fault=fault, times=None)
    retry_after = _header_number(request, "x-mock-retry-after")
    if retry_after is not None:
        step = replace(step, retry_after=retry_after)
    delay = _header_number(request, "x-mock-delay-ms")
    return step if delay is None else replace(step, delay_ms=delay)


def render_content(
    state: MockState, step: Step, values: Mapping[str, str]
) -> tuple[dict[str, Any], ...]:
    blocks: list[dict[str, Any]] = []
    if step.text:
        blocks.append({"type": "text", "text": scenarios.render(step.text, values)})
    for tool in step.tool_uses:
        tool_input = scenarios.render(dict(tool.input), values)
        blocks.append(
            {
                "type": "tool_use",
                "id": state.next_id("toolu"),
                "name": tool.name,
                "input": tool_input,
            }
        )
    return tuple(blocks)


def plan_play(request: web.Request, state: MockState, body: Mapping[str, Any]) -> Play:
    pos = scenarios.locate(body)
    scenario = choose_scenario(request, state, pos)
    step = header_overrides(request, scenario.step(pos.step))
    values = {"cwd": pos.cwd, "model": str(body["model"]), "prompt": pos.prompt}
    return Play(scenario, step, pos, render_content(state, step, values))


def conversation_of(request: web.Request, body: Mapping[str, Any], play: Play) -> tuple[str, ...]:
    metadata = body.get("metadata")
    user = str(metadata.get("user_id", "")) if isinstance(metadata, Mapping) else ""
    session = request.headers.get("x-claude-code-session-id", "")
    return (
        request["key"],
        user,
        session,
        play.scenario.name,
        play.position.prompt,
        str(play.position.step),
    )


def raise_fault(step: Step) -> None:
    status = _FAULT_STATUS[step.fault]
    detail = step.error_message or _FAULT_MESSAGES[step.fault]
    retry_after = step.retry_after if step.fault == "rate_limit" else None
    raise ApiFailure(status, detail, retry_after)


def active_fault(
    request: web.Request, state: MockState, body: Mapping[str, Any], play: Play
) -> str:
    """The fault this request suffers, or "" when the step's fault is spent or absent."""
    if not play.step.fault:
        return ""
    if not state.faults.should_fire(conversation_of(request, body, play), play.step.times):
        return ""
    if play.step.fault != "cut_stream":
        raise_fault(play.step)
    return play.step.fault


# --- replies ------------------------------------------------------------------------


def message_json(msg_id: str, model: str, play: Play, charge: accounting.Charge) -> dict[str, Any]:
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(play.content),
        "stop_reason": play.step.effective_stop_reason,
        "stop_sequence": None,
        "usage": usage_json(charge.input_tokens, charge.output_tokens),
    }


def usage_json(tokens_in: int, tokens_out: int) -> dict[str, Any]:
    return {
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


# One encoder for every event: json.dumps with options builds a new one per call.
_compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def sse(event: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {_compact_json(data)}\n\n".encode()


PING = sse("ping", {"type": "ping"})
MESSAGE_STOP = sse("message_stop", {"type": "message_stop"})


def _chunks(text: str, size: int) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def block_events(index: int, block: Mapping[str, Any]) -> Iterator[bytes]:
    """content_block_start, its deltas and content_block_stop for one block."""
    if block["type"] == "text":
        yield sse("content_block_start", _start(index, {"type": "text", "text": ""}))
        for piece in _chunks(block["text"], TEXT_CHUNK_CHARS):
            yield sse("content_block_delta", _delta(index, {"type": "text_delta", "text": piece}))
    else:
        head = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        yield sse("content_block_start", _start(index, head))
        partial = _compact_json(block["input"])
        for piece in itertools.chain([""], _chunks(partial, JSON_CHUNK_CHARS)):
            delta = {"type": "input_json_delta", "partial_json": piece}
            yield sse("content_block_delta", _delta(index, delta))
    yield sse("content_block_stop", {"type": "content_block_stop", "index": index})


def _start(index: int, block: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def _delta(index: int, delta: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def stream_events(message: Mapping[str, Any]) -> list[bytes]:
    """The SSE events of a whole message, in the order the API sends them."""
    usage = message["usage"]
    start = dict(message, content=[], stop_reason=None)
    start["usage"] = dict(usage, output_tokens=1)
    events = [sse("message_start", {"type": "message_start", "message": start})]
    events.append(PING)
    for index, block in enumerate(message["content"]):
        events.extend(block_events(index, block))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    final_usage = {"output_tokens": usage["output_tokens"]}
    events.append(
        sse("message_delta", {"type": "message_delta", "delta": delta, "usage": final_usage})
    )
    events.append(MESSAGE_STOP)
    return events


def _cut_point(events: Sequence[bytes]) -> int:
    # Past message_start and ping, and inside the first content block, so
    # the client has begun a message it can never finish.
    return min(len(events) - 1, 4)


def reply_headers(state: MockState) -> dict[str, str]:
    return {"request-id": state.next_id("req")}


async def send_stream(
    request: web.Request, state: MockState, events: Sequence[bytes], fault: str
) -> web.StreamResponse:
    headers = reply_headers(state)
    headers.update({"content-type": "text/event-stream", "cache-control": "no-cache"})
    delay = state.settings.event_delay_ms / 1000
    if fault != "cut_stream" and delay <= 0:
        # The whole stream in one send with the headers: clients parse SSE the
        # same way, and one syscall per request is what keeps the mock fast.
        return web.Response(body=b"".join(events), headers=headers)
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    if fault == "cut_stream":
        return await cut_stream(request, response, events[: _cut_point(events)])
    for event in events:
        await response.write(event)
        await asyncio.sleep(delay)
    await response.write_eof()
    return response


async def cut_stream(
    request: web.Request, response: web.StreamResponse, events: Sequence[bytes]
) -> web.StreamResponse:
    await response.write(b"".join(events))
    abort_connection(request)
    return response


def abort_connection(request: web.Request) -> None:
    """Drop the TCP connection without finishing the response."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    request["cut"] = True


# --- handlers -------------------------------------------------------------------------


async def handle_messages(request: web.Request) -> web.StreamResponse:
    state, key, body = await admitted(request)
    check_message_body(body)
    request["model"] = body["model"]
    if state.ledger.exhausted(key):
        raise budget_failure(state.settings)
    play = plan_play(request, state, body)
    request["play"] = play
    if play.step.delay_ms:
        await asyncio.sleep(play.step.delay_ms / 1000)
    fault = active_fault(request, state, body, play)
    tokens_in = accounting.input_tokens(body)
    charge = state.ledger.charge(
        key, body["model"], tokens_in, accounting.output_tokens(play.content)
    )
    request["charge"] = charge
    message = message_json(state.next_id("msg"), body["model"], play, charge)
    if body.get("stream"):
        return await send_stream(request, state, stream_events(message), fault)
    if fault == "cut_stream":
        abort_connection(request)
    return web.json_response(message, headers=reply_headers(state))


def budget_failure(settings: MockSettings) -> ApiFailure:
    if settings.budget_status == 429:
        return ApiFailure(429, "credit budget of this API key is spent (mock)", retry_after=60.0)
    return ApiFailure(400, CREDIT_MESSAGE)


async def handle_count_tokens(request: web.Request) -> web.Response:
    state, key, body = await admitted(request)
    check_message_body(body, needs_max_tokens=False)
    state.ledger.count_request(key)
    return web.json_response({"input_tokens": accounting.input_tokens(body)})


def model_json(model_id: str, display_name: str = "") -> dict[str, Any]:
    return {
        "type": "model",
        "id": model_id,
        "display_name": display_name or model_id,
        "created_at": "2025-01-01T00:00:00Z",
    }


async def handle_models(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.ledger.count_request(check_auth(request, state.settings))
    data = [model_json(model_id, name) for model_id, name in MODELS]
    body = {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
    return web.json_response(body)


async def handle_model(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.ledger.count_request(check_auth(request, state.settings))
    model_id = request.match_info["model_id"]
    names = dict(MODELS)
    return web.json_response(model_json(model_id, names.get(model_id, "")))


async def handle_stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    stats = {key_label(k): v for k, v in state.ledger.snapshot().items()}
    return web.json_response({"keys": stats, "uptime_seconds": time.monotonic() - state.started})


async def handle_health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"status": "ok", "scenarios": [s.name for s in state.book.scenarios]})


# --- errors and the log line ---------------------------------------------------------------


def error_response(failure: ApiFailure, state: MockState) -> web.Response:
    body = {
        "type": "error",
        "error": {"type": failure.kind, "message": failure.detail},
        "request_id": state.next_id("req"),
    }
    headers = reply_headers(state)
    if failure.retry_after is not None:
        headers["retry-after"] = f"{failure.retry_after:g}"
    return web.json_response(body, status=failure.status, headers=headers)


def http_failure(exc: web.HTTPException) -> ApiFailure:
    if exc.status == 413:
        return ApiFailure(413, f"request body exceeds {MAX_BODY_BYTES} bytes")
    return ApiFailure(exc.status, exc.reason or "error")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answers failures in the API's error shape and writes one log line per request."""
    began = time.perf_counter()
    state = request.app[STATE]
    try:
        response = await handler(request)
    except ApiFailure as failure:
        response = fail(request, state, failure)
    except web.HTTPException as exc:
        response = fail(request, state, http_failure(exc))
    log_request(request, response.status, time.perf_counter() - began)
    return response


def fail(request: web.Request, state: MockState, failure: ApiFailure) -> web.Response:
    request["failure"] = failure
    key = request.get("key")
    # Refused keys get no stats entry, so a stranger cannot grow the table.
    if key and failure.status != 401 and request.path.startswith("/v1/"):
        state.ledger.count_request(key, error=True)
    return error_response(failure, state)


def log_request(request: web.Request, status: int, seconds: float) -> None:
    play: Play | None = request.get("play")
    charge: accounting.Charge | None = request.get("charge")
    failure: ApiFailure | None = request.get("failure")
    logger.info(
        "%s %s %s key=%s model=%s scenario=%s step=%s in=%s out=%s cost=%.6f ms=%.1f%s",
        request.method,
        request.path_qs,
        "cut" if request.get("cut") else status,
        key_label(request.get("key", "")) or "-",
        request.get("model", "-"),
        play.scenario.name if play else "-",
        play.position.step if play else "-",
        charge.input_tokens if charge else 0,
        charge.output_tokens if charge else 0,
        charge.cost_usd if charge else 0.0,
        seconds * 1000,
        f" error={failure.kind}: {failure.detail}" if failure else "",
    )


def build_app(
    book: ScenarioBook | None = None, settings: MockSettings | None = None
) -> web.Application:
    """The mock as an aiohttp application (packaged default scenarios unless given)."""
    settings = settings or MockSettings()
    ledger = accounting.Ledger(settings.default_budget_usd, dict(settings.key_budgets))
    app = web.Application(middlewares=[api_errors], client_max_size=MAX_BODY_BYTES)
    app[STATE] = MockState(book or scenarios.load(), settings, ledger)
    app.router.add_post("/v1/messages", handle_messages)
    app.router.add_post("/v1/messages/count_tokens", handle_count_tokens)
    app.router.add_get("/v1/models", handle_models)
    app.router.add_get("/v1/models/{model_id}", handle_model)
    app.router.add_get("/stats", handle_stats)
    app.router.add_get("/health", handle_health)
    return app

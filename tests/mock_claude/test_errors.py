"""Errors in the API's shape: auth, bad requests, faults on demand and spent budgets."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import anthropic
import httpx2
import pytest

from tests.mock_claude.conftest import KEY, OTHER_KEY, SCENARIOS
from tests.mockapi import MockServer, mock_server, running_mock

MODEL = "claude-haiku-4-5"
HELLO: list[Any] = [{"role": "user", "content": "hello"}]


def _post(
    url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def _message_body(**extra: Any) -> bytes:
    return json.dumps({"model": MODEL, "max_tokens": 5, "messages": HELLO, **extra}).encode()


GOOD_HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


def _assert_error_shape(body: dict[str, Any], kind: str) -> None:
    assert body["type"] == "error"
    assert body["error"]["type"] == kind
    assert body["error"]["message"]


def test_missing_api_key_is_401_in_the_api_error_shape(mock_url: str) -> None:
    status, _, body = _post(
        mock_url + "/v1/messages", _message_body(), {"anthropic-version": "2023-06-01"}
    )
    assert status == 401
    _assert_error_shape(body, "authentication_error")


def test_unknown_api_key_is_refused_by_the_sdk(mock_url: str) -> None:
    stranger = anthropic.Anthropic(base_url=mock_url, api_key="sk-not-accepted", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        stranger.messages.create(model=MODEL, max_tokens=5, messages=HELLO)
    assert caught.value.status_code == 401


def test_missing_anthropic_version_is_a_bad_request(mock_url: str) -> None:
    status, _, body = _post(mock_url + "/v1/messages", _message_body(), {"x-api-key": KEY})
    assert status == 400
    _assert_error_shape(body, "invalid_request_error")
    assert "anthropic-version" in body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "JSON"),
        (json.dumps({"max_tokens": 5, "messages": HELLO}).encode(), "model"),
        (json.dumps({"model": MODEL, "messages": HELLO}).encode(), "max_tokens"),
        (json.dumps({"model": MODEL, "max_tokens": 5, "messages": []}).encode(), "messages"),
    ],
)
def test_malformed_request_bodies_are_bad_requests(mock_url: str, body: bytes, field: str) -> None:
    status, _, answer = _post(mock_url + "/v1/messages", body, GOOD_HEADERS)
    assert status == 400
    _assert_error_shape(answer, "invalid_request_error")
    assert field in answer["error"]["message"]


def test_unknown_path_is_404_in_the_api_error_shape(mock_url: str) -> None:
    status, _, body = _post(mock_url + "/v1/nothing", b"{}", GOOD_HEADERS)
    assert status == 404
    _assert_error_shape(body, "not_found_error")


def test_rate_limit_fault_is_429_with_retry_after(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(
            model=MODEL,
            max_tokens=5,
            messages=HELLO,
            extra_headers={"x-mock-fault": "rate_limit", "x-mock-retry-after": "7"},
        )
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


def test_overloaded_fault_is_529(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.OverloadedError) as caught:
        client.messages.create(
            model=MODEL, max_tokens=5, messages=HELLO, extra_headers={"x-mock-fault": "overloaded"}
        )
    assert caught.value.status_code == 529


def test_server_error_fault_is_500(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.create(
            model=MODEL, max_tokens=5, messages=HELLO, extra_headers={"x-mock-fault": "api_error"}
        )
    assert caught.value.status_code == 500
    assert not isinstance(caught.value, anthropic.OverloadedError)


@pytest.mark.parametrize(
    ("fault", "error", "status", "kind"),
    [
        ("invalid_request", anthropic.BadRequestError, 400, "invalid_request_error"),
        ("permission", anthropic.PermissionDeniedError, 403, "permission_error"),
    ],
)
def test_request_faults_answer_in_the_apis_shape(
    client: anthropic.Anthropic,
    fault: str,
    error: type[anthropic.APIStatusError],
    status: int,
    kind: str,
) -> None:
    with pytest.raises(error) as caught:
        client.messages.create(
            model=MODEL, max_tokens=5, messages=HELLO, extra_headers={"x-mock-fault": fault}
        )
    assert caught.value.status_code == status
    assert caught.value.body["error"]["type"] == kind  # type: ignore[index]


def test_cut_stream_breaks_off_inside_the_message(client: anthropic.Anthropic) -> None:
    seen: list[str] = []
    # Mid-stream the SDK lets the transport's own error through, unwrapped.
    with (
        pytest.raises((anthropic.APIConnectionError, httpx2.RemoteProtocolError)),
        client.messages.stream(
            model=MODEL,
            max_tokens=5,
            messages=[{"role": "user", "content": "say something long"}],
            extra_headers={"x-mock-fault": "cut_stream"},
        ) as stream,
    ):
        seen.extend(event.type for event in stream)
    assert "message_start" in seen
    assert "message_stop" not in seen


def test_cut_fault_without_streaming_drops_the_connection(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(
            model=MODEL, max_tokens=5, messages=HELLO, extra_headers={"x-mock-fault": "cut_stream"}
        )


def test_slow_first_byte_delays_the_reply(client: anthropic.Anthropic) -> None:
    began = time.monotonic()
    with client.messages.stream(
        model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "slow please"}]
    ) as stream:
        first = next(iter(stream))
        waited = time.monotonic() - began
        final = stream.get_final_message()
    assert first.type == "message_start"
    assert waited >= 0.6
    assert final.content[0].type == "text"


def test_delay_header_slows_any_request(client: anthropic.Anthropic) -> None:
    began = time.monotonic()
    client.messages.create(
        model=MODEL, max_tokens=5, messages=HELLO, extra_headers={"x-mock-delay-ms": "300"}
    )
    assert time.monotonic() - began >= 0.3


def test_limited_fault_lets_the_sdk_retry_through(mock_url: str, mock: MockServer) -> None:
    prompt = f"flaky please {uuid.uuid4()}"
    patient = anthropic.Anthropic(base_url=mock_url, api_key=KEY, max_retries=2)
    message = patient.messages.create(
        model=MODEL, max_tokens=5, messages=[{"role": "user", "content": prompt}]
    )
    assert message.content[0].text == "Made it."  # type: ignore[union-attr]
    refused = [line for line in mock.log().splitlines() if " 429 " in line and "flaky" in line]
    assert len(refused) >= 2


def test_overloaded_storm_outlasts_bounded_retries(mock_url: str, mock: MockServer) -> None:
    model = f"storm-{uuid.uuid4()}"
    patient = anthropic.Anthropic(base_url=mock_url, api_key=KEY, max_retries=1)
    with pytest.raises(anthropic.OverloadedError):
        patient.messages.create(
            model=model, max_tokens=5, messages=[{"role": "user", "content": "storm please"}]
        )
    assert sum(f"model={model}" in line for line in mock.log().splitlines()) == 2


def _spend(client: anthropic.Anthropic) -> None:
    client.messages.create(model="claude-opus-4-5", max_tokens=5, messages=HELLO)


def test_spent_budget_answers_400_credit_balance_too_low() -> None:
    with running_mock(SCENARIOS, budget_usd=0.00001) as url:
        client = anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0)
        _spend(client)
        with pytest.raises(anthropic.BadRequestError) as caught:
            _spend(client)
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "credit balance is too low" in caught.value.message


def test_budgets_are_kept_per_key() -> None:
    with running_mock(SCENARIOS, key_budgets={KEY: 0.00001}) as url:
        capped = anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0)
        free = anthropic.Anthropic(base_url=url, api_key=OTHER_KEY, max_retries=0)
        _spend(capped)
        with pytest.raises(anthropic.BadRequestError):
            _spend(capped)
        for _ in range(3):
            _spend(free)


def test_spent_budget_can_answer_429_instead() -> None:
    with running_mock(SCENARIOS, budget_usd=0.00001, budget_status=429) as url:
        client = anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0)
        _spend(client)
        with pytest.raises(anthropic.RateLimitError) as caught:
            _spend(client)
    assert "budget" in caught.value.message


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_stats_count_requests_tokens_cost_and_remaining_credit() -> None:
    with mock_server(SCENARIOS, budget_usd=1.0) as server:
        client = anthropic.Anthropic(base_url=server.base_url, api_key=KEY, max_retries=0)
        for _ in range(2):
            client.messages.create(
                model="claude-opus-4-5",
                max_tokens=5,
                messages=[{"role": "user", "content": "x" * 40}],
            )
        with pytest.raises(anthropic.OverloadedError):
            client.messages.create(
                model=MODEL,
                max_tokens=5,
                messages=HELLO,
                extra_headers={"x-mock-fault": "overloaded"},
            )
        stats = _get(server.base_url + "/stats")["keys"]
        health = _get(server.base_url + "/health")
    (label,) = stats
    assert label.endswith(KEY[-4:]) and KEY not in label
    entry = stats[label]
    assert entry["requests"] == 3
    assert entry["errors"] == 1
    assert entry["input_tokens"] == 20  # 40 chars / 4, twice
    assert entry["output_tokens"] == 6  # "Plain reply." twice
    expected_cost = (20 * 5.0 + 6 * 25.0) / 1_000_000  # the opus row of the price table
    assert entry["cost_usd"] == pytest.approx(expected_cost)
    assert entry["remaining_usd"] == pytest.approx(1.0 - expected_cost)
    assert health["status"] == "ok"


def test_event_delay_streams_events_over_time() -> None:
    with running_mock(SCENARIOS, event_delay_ms=40) as url:
        client = anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0)
        arrivals: list[float] = []
        began = time.monotonic()
        with client.messages.stream(
            model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "say something long"}]
        ) as stream:
            for _ in stream:
                arrivals.append(time.monotonic() - began)
            text = stream.get_final_text()
    assert text.startswith("The quick brown fox")
    assert arrivals[-1] - arrivals[0] >= 0.3  # about ten events, 40 ms apart

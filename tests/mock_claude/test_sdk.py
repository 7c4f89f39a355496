"""The mock driven by the official anthropic SDK: replies, streams, tools, tokens, models."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import anthropic
import pytest

from tests.mock_claude.conftest import KEY
from tests.mockapi import MockServer

MODEL = "claude-sonnet-5-5"


def _text(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def _tool_uses(message: Any) -> list[Any]:
    return [block for block in message.content if block.type == "tool_use"]


def test_non_streaming_reply_is_a_complete_message(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hello"}]
    )
    assert message.id.startswith("msg_")
    assert message.role == "assistant"
    assert message.model == MODEL
    assert _text(message) == "Plain reply."
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens >= 1
    assert message.usage.output_tokens == 3  # "Plain reply." is 12 chars, 4 per token


def test_beta_endpoint_answers_like_the_plain_one(client: anthropic.Anthropic) -> None:
    message = client.beta.messages.create(
        model="any-model-name-at-all",
        max_tokens=10,
        messages=[{"role": "user", "content": "hi"}],
        betas=["claude-code-20250219"],
    )
    assert message.model == "any-model-name-at-all"
    assert message.content[0].type == "text"


def test_stream_reassembles_long_text_from_several_deltas(client: anthropic.Anthropic) -> None:
    deltas: list[str] = []
    with client.messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "say something long"}]
    ) as stream:
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                deltas.append(event.delta.text)
        final = stream.get_final_message()
    assert len(deltas) > 3
    assert "".join(deltas) == _text(final)
    assert _text(final).startswith("The quick brown fox")
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 1


def _raw_stream(mock_url: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    request = urllib.request.Request(
        mock_url + "/v1/messages?beta=true",
        data=json.dumps(dict(body, stream=True)).encode(),
        headers={
            "x-api-key": KEY,
            "anthropic-version": "2023-06-01",
            "content-type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    events = []
    for chunk in text.strip().split("\n\n"):
        name, data = chunk.split("\n")
        events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


def test_stream_events_come_in_the_api_order_with_a_ping(mock_url: str) -> None:
    events = _raw_stream(
        mock_url,
        {"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": "use a tool"}]},
    )
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 2
    assert all(name == data["type"] for name, data in events)
    delta_kinds = {data["delta"]["type"] for name, data in events if name == "content_block_delta"}
    assert delta_kinds == {"text_delta", "input_json_delta"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_tool_use_round_trip_moves_the_scenario_on(client: anthropic.Anthropic) -> None:
    messages: list[Any] = [{"role": "user", "content": "please use a tool now"}]
    with client.messages.stream(model=MODEL, max_tokens=100, messages=messages) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    (tool,) = _tool_uses(first)
    assert tool.id.startswith("toolu_")
    assert tool.name == "Write"
    assert tool.input == {"file_path": "./out.txt", "content": f"hello from {MODEL}"}
    messages += [
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": tool.id, "content": "ok"}],
        },
    ]
    second = client.messages.create(model=MODEL, max_tokens=100, messages=messages)
    assert _text(second) == "Written."
    assert second.stop_reason == "end_turn"


def test_working_directory_stated_in_the_prompt_fills_cwd(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=100,
        system="# Environment\n - Primary working directory: /srv/projects/alpha\n",
        messages=[{"role": "user", "content": "use a tool"}],
    )
    (tool,) = _tool_uses(message)
    assert tool.input["file_path"] == "/srv/projects/alpha/out.txt"


def test_two_streamed_tool_calls_keep_distinct_ids_and_exact_json(
    client: anthropic.Anthropic,
) -> None:
    with client.messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "two tools please"}]
    ) as stream:
        message = stream.get_final_message()
    read, bash = _tool_uses(message)
    assert read.id != bash.id
    assert read.input == {"file_path": "/a"}
    assert bash.input == {"command": "echo 'quoted \"text\"' && ls", "description": "list"}


def test_system_prompt_selects_a_scenario(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=10,
        system=[{"type": "text", "text": "From now on You Are A Pirate."}],
        messages=[{"role": "user", "content": "hello"}],
    )
    assert _text(message) == "Arr."


def test_header_selects_a_scenario_whatever_the_prompt(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=10,
        messages=[{"role": "user", "content": "hello"}],
        extra_headers={"x-mock-scenario": "by-system"},
    )
    assert _text(message) == "Arr."


def test_unknown_scenario_header_is_a_bad_request(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=MODEL,
            max_tokens=10,
            messages=[{"role": "user", "content": "hello"}],
            extra_headers={"x-mock-scenario": "no-such-scenario"},
        )
    assert "no-such-scenario" in caught.value.message


def test_system_reminders_do_not_hide_the_prompt_or_restart_the_script(
    client: anthropic.Anthropic,
) -> None:
    reminder = {"type": "text", "text": "<system-reminder>use a tool</system-reminder>"}
    messages: list[Any] = [
        {"role": "user", "content": [reminder, {"type": "text", "text": "two tools"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "calling"}]},
        {"role": "user", "content": [reminder]},
    ]
    message = client.messages.create(model=MODEL, max_tokens=10, messages=messages)
    assert _text(message) == "Both done."


def test_conversation_past_its_script_gets_a_closing_text(client: anthropic.Anthropic) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Plain reply."},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x", "content": "?"}]},
    ]
    message = client.messages.create(model=MODEL, max_tokens=10, messages=messages)
    assert "finished" in _text(message)
    assert message.stop_reason == "end_turn"


def test_a_new_prompt_restarts_the_script(client: anthropic.Anthropic) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "two tools"},
        {"role": "assistant", "content": "done before"},
        {"role": "user", "content": "use a tool again"},
    ]
    message = client.messages.create(model=MODEL, max_tokens=10, messages=messages)
    assert _tool_uses(message)[0].name == "Write"


def _conversation(step: int) -> list[Any]:
    messages: list[Any] = [{"role": "user", "content": "use a tool"}]
    for index in range(step):
        messages += [
            {"role": "assistant", "content": [{"type": "text", "text": f"turn {index}"}]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": ""}],
            },
        ]
    return messages


async def _converse_concurrently(mock_url: str, steps: list[int]) -> list[str]:
    async with anthropic.AsyncAnthropic(base_url=mock_url, api_key=KEY, max_retries=0) as client:

        async def one(step: int) -> str:
            async with client.messages.stream(
                model=MODEL, max_tokens=10, messages=_conversation(step)
            ) as stream:
                message = await stream.get_final_message()
            return message.stop_reason or ""

        return await asyncio.gather(*(one(step) for step in steps))


def test_concurrent_conversations_each_get_their_own_step(mock_url: str) -> None:
    steps = [index % 3 for index in range(48)]
    reasons = asyncio.run(_converse_concurrently(mock_url, steps))
    expected = {0: "tool_use", 1: "end_turn", 2: "end_turn"}
    assert reasons == [expected[step] for step in steps]


def test_count_tokens_matches_the_usage_of_the_same_request(client: anthropic.Anthropic) -> None:
    body: dict[str, Any] = {
        "model": MODEL,
        "system": "be brief",
        "messages": [{"role": "user", "content": "x" * 400}],
    }
    counted = client.messages.count_tokens(**body)
    created = client.messages.create(max_tokens=10, **body)
    assert counted.input_tokens == created.usage.input_tokens == 102  # (8 + 400) / 4
    longer = client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "x" * 4000}]
    )
    assert longer.input_tokens == 1000


def test_models_list_and_any_model_can_be_retrieved(client: anthropic.Anthropic) -> None:
    listed = [model.id for model in client.models.list()]
    assert any("sonnet" in model_id for model_id in listed)
    assert client.models.retrieve("claude-made-up-9").id == "claude-made-up-9"


def test_bearer_token_is_accepted_like_an_api_key(mock_url: str) -> None:
    bearer = anthropic.Anthropic(base_url=mock_url, auth_token=KEY, max_retries=0)
    message = bearer.messages.create(
        model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    assert _text(message) == "Plain reply."


def test_every_request_writes_one_log_line(client: anthropic.Anthropic, mock: MockServer) -> None:
    marker = "log-line-marker-model"
    for _ in range(3):
        client.messages.create(
            model=marker, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    lines = [line for line in mock.log().splitlines() if f"model={marker}" in line]
    assert len(lines) == 3
    assert all("POST /v1/messages 200" in line and "scenario=default" in line for line in lines)

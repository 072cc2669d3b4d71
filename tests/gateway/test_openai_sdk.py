"""The official OpenAI SDK, unchanged, against a live Keel server (sync, async, streaming)."""

from __future__ import annotations

import asyncio
import base64
import json
from array import array

import httpx
import openai
import pytest

from keel.providers.testing import hash_embedding

from ..providers.mock_upstream import (
    MockUpstream,
    anthropic_message,
    anthropic_sse,
    json_reply,
    openai_chunks,
    openai_completion,
    openai_sse,
    sse_reply,
)
from ..server.conftest import ADMIN_KEY, LiveServer

pytestmark = pytest.mark.integration

CHAT = "/v1/chat/completions"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def sdk(live: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.url + "/v1", api_key=ADMIN_KEY, max_retries=0)


def test_sync_sdk_chats_with_a_testing_model(live: LiveServer) -> None:
    reply = sdk(live).chat.completions.create(
        model="testing:echo", messages=[{"role": "user", "content": "ping"}]
    )
    assert reply.choices[0].message.content == "ping"
    assert reply.model == "testing:echo"
    assert reply.usage is not None and reply.usage.total_tokens > 0


def test_the_full_request_surface_reaches_an_openai_upstream(
    live: LiveServer, upstream: MockUpstream
) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
    }
    answer = openai_completion(
        "",
        choices=[
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "logprobs": {"content": []},
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
            }
        ],
    )
    upstream.script(CHAT, json_reply(answer))
    reply = sdk(live).chat.completions.create(
        model="openai:gpt-4o-mini",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        response_format={"type": "json_object"},
        n=1,
        logprobs=True,
        top_logprobs=2,
        seed=7,
        stop=["END"],
        user="u-42",
        extra_body={"top_k": 5},
    )
    sent = upstream.requests[-1].json()
    assert sent["model"] == "gpt-4o-mini"
    assert sent["tools"] == [WEATHER_TOOL]
    assert sent["tool_choice"] == "auto"
    assert sent["response_format"] == {"type": "json_object"}
    assert (sent["n"], sent["logprobs"], sent["top_logprobs"]) == (1, True, 2)
    assert (sent["seed"], sent["stop"], sent["user"], sent["top_k"]) == (7, ["END"], "u-42", 5)
    assert sent["messages"][2]["tool_calls"] == [call]
    assert sent["messages"][3] == {"role": "tool", "content": "sunny", "tool_call_id": "call_1"}
    assert upstream.requests[-1].headers["authorization"] == "Bearer sk-upstream"
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    assert choice.message.tool_calls[0].function.arguments == '{"city":"Oslo"}'


def test_n_choices_come_back_in_order(live: LiveServer, upstream: MockUpstream) -> None:
    choices = [
        {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
        for i, t in enumerate(["one", "two"])
    ]
    upstream.script(CHAT, json_reply(openai_completion(choices=choices)))
    reply = sdk(live).chat.completions.create(
        model="openai:gpt-4o-mini", messages=[{"role": "user", "content": "x"}], n=2
    )
    assert [c.message.content for c in reply.choices] == ["one", "two"]


def test_streaming_with_usage_and_tool_call_deltas(
    live: LiveServer, upstream: MockUpstream
) -> None:
    tool_delta = {
        "index": 0,
        "id": "call_9",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"ci'},
    }
    more = {"index": 0, "function": {"arguments": 'ty":"Rome"}'}}
    chunks = openai_chunks(["Hel", "lo"], tool_calls=(tool_delta, more))
    upstream.script(CHAT, sse_reply([openai_sse(chunks)]))
    stream = sdk(live).chat.completions.create(
        model="smart",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    received = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in received if c.choices)
    arguments = "".join(
        call.function.arguments or ""
        for c in received
        if c.choices and c.choices[0].delta.tool_calls
        for call in c.choices[0].delta.tool_calls
        if call.function
    )
    assert text == "Hello"
    assert arguments == '{"city":"Rome"}'
    assert received[-1].choices == [] and received[-1].usage is not None
    assert received[-1].usage.completion_tokens == 2
    assert all(c.model == "smart" for c in received)
    assert upstream.requests[-1].json()["stream"] is True


def test_async_sdk_plain_and_streaming(live: LiveServer) -> None:
    async def run() -> tuple[str | None, str]:
        client = openai.AsyncOpenAI(base_url=live.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
        plain = await client.chat.completions.create(
            model="testing:echo", messages=[{"role": "user", "content": "async hi"}]
        )
        stream = await client.chat.completions.create(
            model="testing:echo", messages=[{"role": "user", "content": "a b c"}], stream=True
        )
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        await client.close()
        return plain.choices[0].message.content, "".join(pieces)

    plain, streamed = asyncio.run(run())
    assert plain == "async hi"
    assert streamed == "a b c"


def test_a_stream_cut_mid_way_ends_with_an_error_event(
    live: LiveServer, upstream: MockUpstream
) -> None:
    chunks = openai_chunks(["par", "tial"])[:2]
    upstream.script(CHAT, sse_reply([openai_sse(chunks, done=False)], end="cut", interval=0.3))
    stream = sdk(live).chat.completions.create(
        model="openai:gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(openai.APIError, match="broke"):
        for _ in stream:
            pass


def test_pipelines_answer_through_the_chat_api(live: LiveServer) -> None:
    catalog = live.runtime.catalog
    catalog.set_label("support-triage", "production", catalog.resolve("support-triage").version)
    client = sdk(live)
    ticket = {"subject": "Charged twice", "body": "My card was billed two times."}
    reply = client.chat.completions.create(
        model="pipeline/support-triage",
        messages=[{"role": "user", "content": json.dumps(ticket)}],
    )
    keel = reply.model_extra["keel"] if reply.model_extra else {}
    assert keel["decision"]["label"] == "billing"
    assert reply.choices[0].message.content == "billing"
    assert keel["pipeline"] == "support-triage" and len(keel["trace_id"]) == 32
    by_input = client.chat.completions.create(
        model="pipeline/support-triage@production",
        messages=[{"role": "user", "content": "ignored"}],
        extra_body={"input": {"subject": "App crashes", "body": "On start."}},
    )
    assert by_input.choices[0].message.content == "technical"


def test_models_lists_aliases_and_pipelines(live: LiveServer) -> None:
    ids = [m.id for m in sdk(live).models.list()]
    assert {"testing:echo", "smart", "claude", "pipeline/summarize"} <= set(ids)


def test_embeddings_in_float_and_base64(live: LiveServer) -> None:
    client = sdk(live)
    floats = client.embeddings.create(model="embedder", input=["a", "b"], encoding_format="float")
    assert floats.data[1].embedding == pytest.approx(hash_embedding("b"))
    default = client.embeddings.create(model="testing:echo", input="a")
    assert default.data[0].embedding == pytest.approx(hash_embedding("a"), abs=1e-6)
    raw = httpx.post(
        live.url + "/v1/embeddings",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        json={"model": "testing:echo", "input": "a", "encoding_format": "base64"},
    )
    decoded = array("f", base64.b64decode(raw.json()["data"][0]["embedding"]))
    assert list(decoded) == pytest.approx(hash_embedding("a"), abs=1e-6)


def test_anthropic_tool_calls_are_translated_both_ways(
    live: LiveServer, upstream: MockUpstream
) -> None:
    content = [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ]
    upstream.script(
        "/v1/messages", json_reply(anthropic_message(content=content, stop_reason="tool_use"))
    )
    reply = sdk(live).chat.completions.create(
        model="claude",
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "toolu_0",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_0", "content": "rainy"},
        ],
        tools=[WEATHER_TOOL],
        tool_choice="required",
    )
    sent = upstream.requests[-1].json()
    assert sent["tools"][0]["input_schema"] == WEATHER_TOOL["function"]["parameters"]
    assert sent["tool_choice"] == {"type": "any"}
    assert sent["messages"][1]["content"][0] == {
        "type": "tool_use",
        "id": "toolu_0",
        "name": "get_weather",
        "input": {"city": "Rome"},
    }
    assert sent["messages"][2]["content"][0]["type"] == "tool_result"
    message = reply.choices[0].message
    assert reply.choices[0].finish_reason == "tool_calls"
    assert message.content == "Let me look."
    assert message.tool_calls is not None
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Paris"}


def test_anthropic_streamed_tool_calls_arrive_as_openai_deltas(
    live: LiveServer, upstream: MockUpstream
) -> None:
    start = {
        "id": "msg_9",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-3-5-haiku-20241022",
        "usage": {"input_tokens": 20},
    }
    events = [
        {"type": "message_start", "message": start},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_7",
                "name": "get_weather",
                "input": {},
            },
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"city": '},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '"Oslo"}'},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
    ]
    upstream.script("/v1/messages", sse_reply([anthropic_sse(events)]))
    stream = sdk(live).chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    received = list(stream)
    calls = [
        call
        for c in received
        if c.choices and c.choices[0].delta.tool_calls
        for call in c.choices[0].delta.tool_calls
    ]
    assert (
        calls[0].id == "toolu_7" and calls[0].function and calls[0].function.name == "get_weather"
    )
    arguments = "".join(call.function.arguments or "" for call in calls if call.function)
    assert json.loads(arguments) == {"city": "Oslo"}
    finishes = [c.choices[0].finish_reason for c in received if c.choices]
    assert "tool_calls" in finishes
    assert received[-1].usage is not None and received[-1].usage.completion_tokens == 9

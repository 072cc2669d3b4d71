"""The test doubles behave like models: echo, scripted and function models, and their provider."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.core.errors import ConfigError, ProviderError, ProviderStreamError, ProviderTimeout
from keel.core.messages import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    GenerationParams,
    Message,
    ModelRef,
)
from keel.core.usage import Usage
from keel.providers.base import ChatModel
from keel.providers.registry import ProviderRegistry
from keel.providers.testing import (
    EchoModel,
    FunctionModel,
    ScriptedModel,
    TestingProvider,
    example_for_schema,
    plugin,
    split_words,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def request(text: str = "hello there", **params: Any) -> ChatRequest:
    messages = (Message("system", "Be brief."), Message("user", text))
    return ChatRequest("echo", messages, GenerationParams(**params))


async def collect(model: ChatModel, req: ChatRequest) -> list[ChatChunk]:
    return [chunk async for chunk in model.stream(req)]


# --- echo ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_echo_answers_with_the_last_user_message_and_counts_usage() -> None:
    model = TestingProvider().model("echo")
    messages = (
        Message("user", "first question"),
        Message("assistant", "an answer"),
        Message("user", "second question"),
    )
    response = await model.complete(ChatRequest("echo", messages))
    assert response.text == "second question"
    assert response.finish_reason == "stop"
    assert response.model == "echo"
    assert response.usage == Usage(model.profile.count_messages(messages), 4)
    again = await model.complete(ChatRequest("echo", messages))
    assert again.response_id != response.response_id


@pytest.mark.anyio
async def test_echo_stream_yields_words_that_join_to_the_answer() -> None:
    model = EchoModel()
    chunks = await collect(model, request("one two  three"))
    assert [c.delta for c in chunks[:-1]] == ["one ", "two  ", "three"]
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage == (await model.complete(request("one two  three"))).usage


@pytest.mark.anyio
async def test_echo_honors_stop_sequences_and_max_tokens() -> None:
    model = EchoModel()
    stopped = await model.complete(request("alpha. beta", stop=(".",)))
    assert (stopped.text, stopped.finish_reason) == ("alpha", "stop")
    long = await model.complete(request("x" * 100, max_tokens=5))
    assert (long.text, long.finish_reason) == ("x" * 20, "length")


ENUM_SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"enum": ["positive", "negative"]},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "count": {"type": "integer", "minimum": 3},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "note": {"type": ["string", "null"], "maxLength": 4},
        "flag": {"type": "boolean"},
        "nested": {"$ref": "#/$defs/inner"},
    },
    "required": ["label", "score"],
    "additionalProperties": False,
    "$defs": {"inner": {"type": "object", "properties": {"code": {"const": "X1"}}}},
}


@pytest.mark.anyio
@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_schema", "json_schema": {"name": "verdict", "schema": ENUM_SCHEMA}},
        {"type": "json_object", "schema": ENUM_SCHEMA},
    ],
)
async def test_echo_answers_json_valid_against_the_requested_schema(
    response_format: dict[str, Any],
) -> None:
    response = await EchoModel().complete(request("hello", response_format=response_format))
    value = json.loads(response.text)
    jsonschema.validate(value, ENUM_SCHEMA)
    assert value["label"] == "positive"
    assert value["score"] == 0.5
    assert value["count"] == 3
    assert value["tags"] == ["hello", "hello"]
    assert value["note"] == "hell"
    assert value["nested"] == {"code": "X1"}


@pytest.mark.anyio
async def test_echo_json_object_without_schema_is_an_object() -> None:
    response = await EchoModel().complete(request(response_format={"type": "json_object"}))
    assert json.loads(response.text) == {}


@given(
    low=st.floats(-1e6, 1e6, allow_nan=False),
    span=st.floats(0, 1e6, allow_nan=False),
    integer=st.booleans(),
    exclusive=st.booleans(),
)
def test_example_numbers_respect_their_bounds(
    low: float, span: float, integer: bool, exclusive: bool
) -> None:
    low = float(int(low)) if integer else low
    high = low + (float(int(span)) if integer else span)
    if exclusive and high - low <= 2:
        high = low + 4
    keys = ("exclusiveMinimum", "exclusiveMaximum") if exclusive else ("minimum", "maximum")
    for schema in (
        {"type": "integer" if integer else "number", keys[0]: low, keys[1]: high},
        {"type": "integer" if integer else "number", keys[0]: low},
        {"type": "integer" if integer else "number", keys[1]: high},
    ):
        jsonschema.validate(example_for_schema(schema), schema)


@given(st.text())
def test_stream_pieces_join_back_to_the_text(text: str) -> None:
    pieces = split_words(text)
    assert "".join(pieces) == text
    assert all(piece for piece in pieces)


@pytest.mark.anyio
async def test_echo_embeddings_are_deterministic_unit_vectors() -> None:
    first, second, again = await EchoModel().embed(["a", "b", "a"])
    assert first == again
    assert first != second
    assert sum(v * v for v in first) == pytest.approx(1.0)


# --- scripted --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_scripted_model_replays_answers_and_faults_in_order() -> None:
    canned = ChatResponse("canned", "stop", Usage(7, 1), "v2", "resp-1")
    model = ScriptedModel([ProviderTimeout("upstream slow"), "plain text", canned])
    with pytest.raises(ProviderTimeout, match="upstream slow"):
        await model.complete(request("first"))
    plain = await model.complete(request("second"))
    assert plain.text == "plain text"
    assert plain.usage.output_tokens == 3
    assert await model.complete(request("third")) is canned
    assert [r.messages[-1].content for r in model.requests] == ["first", "second", "third"]
    assert model.remaining == 0


@pytest.mark.anyio
async def test_scripted_model_says_clearly_when_its_script_runs_out() -> None:
    model = ScriptedModel(["only one"])
    await model.complete(request())
    with pytest.raises(ConfigError) as caught:
        await model.complete(request())
    assert caught.value.code == "script_exhausted"
    assert not isinstance(caught.value, ProviderError)  # retries must not swallow it
    assert "2 times" in caught.value.message
    assert "only 1 items" in caught.value.message


@pytest.mark.anyio
async def test_scripted_stream_can_break_mid_answer() -> None:
    broken = [ChatChunk("Hel"), ChatChunk("lo"), ProviderStreamError("connection reset")]
    model = ScriptedModel([broken, "fine now"])
    seen: list[str] = []

    async def consume() -> None:
        async for chunk in model.stream(request()):
            seen.append(chunk.delta)

    with pytest.raises(ProviderStreamError):
        await consume()
    assert seen == ["Hel", "lo"]
    chunks = await collect(model, request())
    assert "".join(c.delta for c in chunks) == "fine now"
    assert chunks[-1].usage is not None


@pytest.mark.anyio
async def test_scripted_stream_raises_a_scripted_fault_before_any_chunk() -> None:
    model = ScriptedModel([ProviderTimeout("no first byte")])
    with pytest.raises(ProviderTimeout):
        await collect(model, request())


@pytest.mark.anyio
async def test_scripted_chunks_can_be_completed() -> None:
    model = ScriptedModel([[ChatChunk("a"), ChatChunk("b", "stop", Usage(2, 2))]])
    response = await model.complete(request())
    assert (response.text, response.finish_reason, response.usage) == ("ab", "stop", Usage(2, 2))


# --- function --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_function_model_calls_sync_and_async_functions() -> None:
    def shout(messages: Sequence[Message], params: GenerationParams) -> str:
        return f"{messages[-1].content.upper()} t={params.temperature}"

    async def structured(messages: Sequence[Message], params: GenerationParams) -> ChatResponse:
        return ChatResponse("done", "length", Usage(1, 1))

    sync_model = FunctionModel(shout)
    assert (await sync_model.complete(request("hi", temperature=0.3))).text == "HI t=0.3"
    assert sync_model.requests[0].messages[-1].content == "hi"
    async_model = FunctionModel(structured)
    assert (await async_model.complete(request())).finish_reason == "length"
    chunks = await collect(async_model, request())
    assert [c.delta for c in chunks] == ["done", ""]


@pytest.mark.anyio
async def test_function_model_faults_propagate() -> None:
    def failing(messages: Sequence[Message], params: GenerationParams) -> str:
        raise ProviderTimeout("simulated")

    with pytest.raises(ProviderTimeout):
        await FunctionModel(failing).complete(request())


# --- provider --------------------------------------------------------------------------------


def test_every_testing_model_is_a_chat_model() -> None:
    provider = TestingProvider()
    provider.scripted("s", ["x"])
    provider.function("f", lambda messages, params: "y")
    for name in ("echo", "s", "f"):
        assert isinstance(provider.model(name), ChatModel)


@pytest.mark.anyio
async def test_provider_registers_models_under_its_name() -> None:
    provider = TestingProvider()
    scripted = provider.scripted("flaky", ["ok"])
    assert provider.model("flaky") is scripted
    assert scripted.ref == ModelRef("testing", "flaky")
    custom = EchoModel(ModelRef("testing", "other"))
    provider.add("other", custom)
    assert provider.model("other") is custom
    with pytest.raises(ProviderError) as caught:
        provider.model("missing")
    assert caught.value.code == "provider_model_not_found"
    assert "echo" in caught.value.message


@pytest.mark.anyio
async def test_provider_prices_make_costs_testable() -> None:
    registry = ProviderRegistry(
        [plugin], {"testing": {"input_per_mtok": "2.5", "output_per_mtok": 10}}
    )
    model = registry.model("testing:echo")
    response = await model.complete(request("four words right here"))
    expected = (
        response.usage.input_tokens * Decimal("2.5") + response.usage.output_tokens * 10
    ) / Decimal(1_000_000)
    assert model.profile.cost(response.usage) == expected
    provider = registry.provider("testing")
    assert isinstance(provider, TestingProvider)
    assert provider.scripted("s", []).profile.price == model.profile.price


@pytest.mark.anyio
async def test_provider_latency_delays_every_call() -> None:
    provider = TestingProvider.from_options("testing", {"latency_ms": 30})
    started = time.perf_counter()
    await provider.model("echo").complete(request())
    await provider.scripted("s", ["x"]).complete(request())
    assert time.perf_counter() - started >= 0.055


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"latency": 5}, "provider_option_unknown"),
        ({"latency_ms": "soon"}, "provider_option_invalid"),
        ({"input_per_mtok": -1}, "provider_option_invalid"),
    ],
)
def test_provider_rejects_bad_options(options: dict[str, Any], code: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TestingProvider.from_options("testing", options)
    assert caught.value.code == code

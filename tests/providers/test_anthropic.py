"""The Anthropic Messages provider against a real HTTP mock upstream on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from importlib.metadata import entry_points
from typing import Any

import pytest

from keel.core.errors import (
    ConfigError,
    InvalidInputError,
    ProviderError,
    ProviderHTTPError,
    ProviderMalformedResponse,
    ProviderStreamError,
    ProviderTimeout,
    ProviderUnavailable,
)
from keel.core.messages import ChatChunk, ChatRequest, GenerationParams, Message
from keel.core.usage import Usage
from keel.providers.anthropic import (
    AnthropicChatModel,
    AnthropicProvider,
    finish_reason,
    plugin,
)
from keel.providers.base import ChatModel, approximate_tokens
from keel.providers.registry import ProviderRegistry

from .mock_upstream import (
    MockUpstream,
    anthropic_events,
    anthropic_message,
    anthropic_sse,
    json_reply,
    raw_reply,
    slow_reply,
    split_bytes,
    sse_reply,
)

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

MESSAGES = "/v1/messages"
MODEL = "claude-3-5-haiku-20241022"
HELLO = ChatRequest(model=MODEL, messages=(Message("user", "Hi"),))


def options(upstream: MockUpstream, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "base_url": upstream.base_url,
        "api_key": "sk-ant-test",
        "allow_remote": False,
        "read_timeout": 5.0,
        "total_timeout": 10.0,
    }
    values.update(overrides)
    return values


@pytest.fixture
async def provider(upstream: MockUpstream) -> AsyncIterator[AnthropicProvider]:
    created = AnthropicProvider.from_options("anthropic", options(upstream))
    yield created
    await created.aclose()


@pytest.fixture
def model(provider: AnthropicProvider) -> AnthropicChatModel:
    return provider.model(MODEL)


async def collect(
    model: ChatModel, request: ChatRequest = HELLO, into: list[ChatChunk] | None = None
) -> list[ChatChunk]:
    """Every chunk of a stream; ``into`` keeps those received before an error."""
    received = [] if into is None else into
    async for chunk in model.stream(request):
        received.append(chunk)
    return received


def assert_names_call(error: ProviderError) -> None:
    assert error.details["provider"] == "anthropic"
    assert error.details["model"] == MODEL


# --- complete -------------------------------------------------------------------------


async def test_complete_joins_text_blocks_and_maps_the_answer(
    upstream: MockUpstream, model: AnthropicChatModel
) -> None:
    content = [
        {"type": "text", "text": "Hello, "},
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}},
        {"type": "text", "text": "world"},
    ]
    usage = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 100,
        "output_tokens": 4,
    }
    upstream.script(
        MESSAGES,
        json_reply(anthropic_message(content=content, stop_reason="max_tokens", usage=usage)),
    )

    response = await model.complete(HELLO)

    assert response.text == "Hello, world"
    assert response.finish_reason == "length"
    assert response.usage == Usage(115, 4)
    assert response.model == "claude-3-5-haiku-20241022"
    assert response.response_id == "msg_01"
    assert response.system_fingerprint is None


async def test_complete_sends_headers_system_and_params(upstream: MockUpstream) -> None:
    upstream.script(MESSAGES, json_reply(anthropic_message()))
    provider = AnthropicProvider.from_options(
        "anthropic", options(upstream, api_version="2024-01-01")
    )
    request = ChatRequest(
        model=MODEL,
        messages=(
            Message("system", "Be brief."),
            Message("user", "Hi"),
            Message("assistant", "Hello"),
            Message("system", "Answer in French."),
            Message("user", "How are you?"),
        ),
        params=GenerationParams(temperature=0.3, top_p=0.8, stop=("###",), seed=1),
        extra={"metadata": {"user_id": "u-1"}, "top_k": 20},
    )
    try:
        await provider.model(MODEL).complete(request)
    finally:
        await provider.aclose()

    [sent] = upstream.requests
    assert sent.path == MESSAGES
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == "2024-01-01"
    assert "authorization" not in sent.headers
    assert sent.json() == {
        "model": MODEL,
        "max_tokens": 1024,
        "system": "Be brief.\n\nAnswer in French.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "How are you?"},
        ],
        "temperature": 0.3,
        "top_p": 0.8,
        "stop_sequences": ["###"],
        "metadata": {"user_id": "u-1"},
        "top_k": 20,
    }


async def test_explicit_max_tokens_and_no_system(
    upstream: MockUpstream, model: AnthropicChatModel
) -> None:
    upstream.script(MESSAGES, json_reply(anthropic_message()))
    request = ChatRequest(
        model=MODEL, messages=HELLO.messages, params=GenerationParams(max_tokens=50)
    )

    await model.complete(request)

    sent = upstream.requests[0].json()
    assert sent["max_tokens"] == 50
    assert "system" not in sent
    assert upstream.requests[0].headers["anthropic-version"] == "2023-06-01"


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (
            ChatRequest(model=MODEL, messages=(Message("tool", "42"),)),
            "message_role_unsupported",
        ),
        (
            ChatRequest(
                model=MODEL,
                messages=HELLO.messages,
                params=GenerationParams(response_format={"type": "json_object"}),
            ),
            "param_unsupported",
        ),
        (
            ChatRequest(model=MODEL, messages=HELLO.messages, extra={"messages": []}),
            "extra_field_reserved",
        ),
        (
            ChatRequest(
                model=MODEL,
                messages=(Message("system", "S"), Message("user", "Hi")),
                extra={"system": "other"},
            ),
            "extra_field_reserved",
        ),
    ],
)
async def test_requests_anthropic_cannot_express_are_refused_before_sending(
    upstream: MockUpstream, model: AnthropicChatModel, request_: ChatRequest, code: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        await model.complete(request_)

    assert caught.value.code == code
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("pause_turn", "pause_turn"),
        (None, None),
    ],
)
def test_stop_reasons_use_openai_names(stop_reason: str | None, expected: str | None) -> None:
    assert finish_reason(stop_reason) == expected


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (400, "invalid_request_error", "provider_bad_request"),
        (401, "authentication_error", "provider_auth_failed"),
        (404, "not_found_error", "provider_model_not_found"),
        (500, "api_error", "provider_server_error"),
        (529, "overloaded_error", "provider_server_error"),
    ],
)
async def test_http_errors_carry_the_anthropic_error(
    upstream: MockUpstream, model: AnthropicChatModel, status: int, kind: str, code: str
) -> None:
    body = {"type": "error", "error": {"type": kind, "message": f"{kind} happened"}}
    upstream.script(MESSAGES, json_reply(body, status=status))

    with pytest.raises(ProviderHTTPError) as caught:
        await model.complete(HELLO)

    error = caught.value
    assert error.code == code
    assert error.details["upstream_status"] == status
    assert error.details["upstream_message"] == f"{kind} happened"
    assert error.details["upstream_error_type"] == kind
    assert_names_call(error)


async def test_rate_limit_reports_retry_after(
    upstream: MockUpstream, model: AnthropicChatModel
) -> None:
    body = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    upstream.script(MESSAGES, json_reply(body, status=429, headers={"retry-after": "12"}))

    with pytest.raises(ProviderHTTPError) as caught:
        await model.complete(HELLO)

    assert caught.value.code == "provider_rate_limited"
    assert caught.value.details["retry_after"] == 12.0


async def test_slow_answer_times_out(upstream: MockUpstream) -> None:
    upstream.script(MESSAGES, slow_reply(3.0, json_reply(anthropic_message())))
    provider = AnthropicProvider.from_options("anthropic", options(upstream, read_timeout=0.2))
    try:
        with pytest.raises(ProviderTimeout) as caught:
            await provider.model(MODEL).complete(HELLO)
    finally:
        await provider.aclose()

    assert caught.value.code == "provider_timeout"
    assert caught.value.details["timeout"] == "read"
    assert_names_call(caught.value)


@pytest.mark.parametrize(
    "reply",
    [
        raw_reply(b"<html>oops</html>", content_type="text/html"),
        json_reply({"id": "msg_1", "type": "message"}),
        json_reply(anthropic_message(content=["text"])),
        json_reply(anthropic_message(content=[{"type": "text"}])),
        json_reply(anthropic_message(usage={"input_tokens": "ten", "output_tokens": 1})),
    ],
)
async def test_malformed_answers(
    upstream: MockUpstream, model: AnthropicChatModel, reply: Any
) -> None:
    upstream.script(MESSAGES, reply)

    with pytest.raises(ProviderMalformedResponse) as caught:
        await model.complete(HELLO)

    assert caught.value.code == "provider_malformed_response"
    assert_names_call(caught.value)


async def test_embed_is_unsupported(upstream: MockUpstream, model: AnthropicChatModel) -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        await model.embed(["text"])

    assert caught.value.code == "capability_unsupported"
    assert_names_call(caught.value)
    assert upstream.requests == []


# --- streaming ------------------------------------------------------------------------


async def test_stream_yields_text_then_finish_and_usage(
    upstream: MockUpstream, model: AnthropicChatModel
) -> None:
    stream = anthropic_sse(anthropic_events(["Bon", "jour", " ☀"]))
    upstream.script(MESSAGES, sse_reply(split_bytes(stream, 5)))

    chunks = await collect(model)

    assert "".join(chunk.delta for chunk in chunks) == "Bonjour ☀"
    last = chunks[-1]
    assert last.finish_reason == "length"
    assert last.usage == Usage(25, 15)
    assert all(chunk.model == "claude-3-5-haiku-20241022" for chunk in chunks)
    assert all(chunk.response_id == "msg_02" for chunk in chunks)
    assert upstream.requests[0].json()["stream"] is True


async def test_stream_without_message_stop_is_broken(
    upstream: MockUpstream, model: AnthropicChatModel
) -> None:
    upstream.script(MESSAGES, sse_reply([anthropic_sse(anthropic_events(["x"], stop=False))]))

    with pytest.raises(ProviderStreamError) as caught:
        await collect(model)

    assert caught.value.code == "provider_stream_broken"
    assert "message_stop" in caught.value.message
    assert_names_call(caught.value)


async def test_stream_cut_mid_body_is_broken(
    upstream: MockUpstream, model: AnthropicChatModel
) -> None:
    stream = anthropic_sse(anthropic_events(["partial"]))
    upstream.script(MESSAGES, sse_reply([stream[: len(stream) // 2]], end="cut"))

    with pytest.raises(ProviderStreamError) as caught:
        await collect(model)

    assert caught.value.code == "provider_stream_broken"
    assert caught.value.__cause__ is not None
    assert_names_call(caught.value)


async def test_error_event_inside_stream_raises(
    upstream: MockUpstream, model: AnthropicChatModel
) -> None:
    events = anthropic_events(["Hi"])[:4]
    events.append({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    upstream.script(MESSAGES, sse_reply([anthropic_sse(events)]))
    received: list[ChatChunk] = []

    with pytest.raises(ProviderStreamError) as caught:
        await collect(model, into=received)

    assert [chunk.delta for chunk in received] == ["Hi"]
    assert caught.value.code == "provider_stream_upstream_error"
    assert caught.value.details["upstream_error_type"] == "overloaded_error"
    assert_names_call(caught.value)


async def test_stream_http_error(upstream: MockUpstream, model: AnthropicChatModel) -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    upstream.script(MESSAGES, json_reply(body, status=503, headers={"retry-after": "3"}))

    with pytest.raises(ProviderHTTPError) as caught:
        await collect(model)

    assert caught.value.code == "provider_server_error"
    assert caught.value.details["retry_after"] == 3.0


# --- guard, profiles, registry --------------------------------------------------------


async def test_remote_host_is_blocked_without_network_io(no_network: list[str]) -> None:
    provider = AnthropicProvider.from_options(
        "anthropic", {"base_url": "https://api.anthropic.com/v1", "allow_remote": False}
    )
    try:
        for call in (provider.model(MODEL).complete(HELLO), collect(provider.model(MODEL))):
            with pytest.raises(ProviderUnavailable) as caught:
                await call
            assert caught.value.code == "model_requests_blocked"
            assert_names_call(caught.value)
    finally:
        await provider.aclose()
    assert no_network == []


def test_profiles_resolve_dated_ids_and_aliases() -> None:
    provider = AnthropicProvider.from_options("anthropic", {"allow_remote": False})
    million = Usage(1_000_000, 1_000_000)

    assert provider.profile(MODEL).price.cost(million) == Decimal("4.80")
    assert provider.profile("claude-3-5-haiku-latest").context_window == 200_000
    assert provider.profile("claude-sonnet-4-20250514").price.cost(million) == Decimal(18)
    assert provider.profile("claude-sonnet-4-0").max_output_tokens == 64_000
    assert provider.profile("claude-opus-4-1-20250805").price.cost(million) == Decimal(90)
    assert provider.profile("claude-3-5-sonnet-20241022").max_output_tokens == 8_192

    profile = provider.profile(MODEL)
    assert profile.exact_tokens is False
    assert profile.count_text is approximate_tokens
    assert not profile.supports_embeddings

    assert provider.profile("claude-next").price.is_free


def test_invalid_options_are_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        AnthropicProvider.from_options("anthropic", {"organization": "org-1"})

    assert caught.value.code == "provider_options_invalid"


def test_registry_resolves_anthropic_models() -> None:
    registry = ProviderRegistry(plugins=[plugin], options={"anthropic": {"allow_remote": False}})

    model = registry.model(f"anthropic:{MODEL}")

    assert isinstance(model, AnthropicChatModel)
    assert isinstance(model, ChatModel)
    assert model.ref.provider == "anthropic"


def test_entry_point_exposes_the_plugin() -> None:
    [found] = [ep for ep in entry_points(group="keel.providers") if ep.name == "anthropic"]
    assert found.load() is plugin

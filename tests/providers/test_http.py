"""The shared HTTP client (providers/http.py) against a real mock upstream on loopback.

Driven through the OpenAI provider: connection pooling, timeouts, connection failures,
error bodies and Retry-After, redirects, option validation and the pure helpers.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from pydantic import SecretStr

from keel.core.errors import (
    ConfigError,
    InvalidInputError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderTimeout,
)
from keel.core.messages import ChatChunk, ChatRequest, Message
from keel.providers.base import ChatModel
from keel.providers.http import is_loopback_host, parse_retry_after, upstream_error
from keel.providers.openai import OpenAIChatModel, OpenAIProvider
from keel.settings import OpenAISettings

from .mock_upstream import (
    MockUpstream,
    json_reply,
    openai_chunks,
    openai_completion,
    openai_sse,
    raw_reply,
    slow_reply,
    sse_reply,
    truncated_reply,
)

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

CHAT = "/v1/chat/completions"
HELLO = ChatRequest(model="gpt-4o-mini", messages=(Message("user", "Hi"),))


def options(upstream: MockUpstream, **overrides: Any) -> dict[str, Any]:
    return {"base_url": upstream.base_url, "allow_remote": False, **overrides}


@pytest.fixture
async def provider(upstream: MockUpstream) -> AsyncIterator[OpenAIProvider]:
    created = OpenAIProvider.from_options("openai", options(upstream))
    yield created
    await created.aclose()


@pytest.fixture
def model(provider: OpenAIProvider) -> OpenAIChatModel:
    return provider.model("gpt-4o-mini")


async def collect(model: ChatModel) -> list[ChatChunk]:
    return [chunk async for chunk in model.stream(HELLO)]


def assert_names_call(error: ProviderError) -> None:
    assert error.details["provider"] == "openai"
    assert error.details["model"] == "gpt-4o-mini"


async def test_extra_that_is_not_json_is_refused(
    upstream: MockUpstream, model: OpenAIChatModel
) -> None:
    request = ChatRequest(model="gpt-4o-mini", messages=HELLO.messages, extra={"x": object()})

    with pytest.raises(InvalidInputError) as caught:
        await model.complete(request)

    assert caught.value.code == "request_not_serializable"
    assert upstream.requests == []


async def test_connections_are_pooled_and_reopened_after_aclose(
    upstream: MockUpstream, provider: OpenAIProvider
) -> None:
    upstream.script(CHAT, json_reply(openai_completion()))
    model = provider.model("gpt-4o-mini")

    await model.complete(HELLO)
    await model.complete(HELLO)
    await provider.aclose()
    await model.complete(HELLO)

    first, second, third = (received.client_port for received in upstream.requests)
    assert first == second  # the keep-alive connection was reused
    assert third != first  # aclose closed it; the client reopened lazily


async def test_unavailable_reports_retry_after_from_an_http_date(
    upstream: MockUpstream, model: OpenAIChatModel
) -> None:
    later = "Wed, 21 Oct 2099 07:28:00 GMT"
    upstream.script(CHAT, json_reply({}, status=503, headers={"Retry-After": later}))

    with pytest.raises(ProviderHTTPError) as caught:
        await model.complete(HELLO)

    assert caught.value.code == "provider_server_error"
    assert caught.value.details["retry_after"] > 0


async def test_retry_after_ms_is_preferred_when_present(
    upstream: MockUpstream, model: OpenAIChatModel
) -> None:
    headers = {"Retry-After": "2", "retry-after-ms": "1500"}
    upstream.script(CHAT, json_reply({}, status=429, headers=headers))

    with pytest.raises(ProviderHTTPError) as caught:
        await model.complete(HELLO)

    assert caught.value.details["retry_after"] == 1.5


async def test_non_json_error_body_is_quoted(
    upstream: MockUpstream, model: OpenAIChatModel
) -> None:
    page = b"<html><body>502 Bad Gateway</body></html>"
    upstream.script(CHAT, raw_reply(page, status=502, content_type="text/html"))

    with pytest.raises(ProviderHTTPError) as caught:
        await model.complete(HELLO)

    assert caught.value.code == "provider_server_error"
    assert "502 Bad Gateway" in caught.value.details["upstream_message"]
    assert "retry_after" not in caught.value.details


async def test_redirects_are_not_followed(upstream: MockUpstream, model: OpenAIChatModel) -> None:
    upstream.script(
        CHAT, raw_reply(b"", status=307, headers={"Location": "https://api.openai.com/v1"})
    )

    with pytest.raises(ProviderHTTPError) as caught:
        await model.complete(HELLO)

    assert caught.value.upstream_status == 307
    assert "api.openai.com" in caught.value.message
    assert len(upstream.requests) == 1


async def test_body_cut_short_is_a_lost_connection(
    upstream: MockUpstream, model: OpenAIChatModel
) -> None:
    upstream.script(CHAT, truncated_reply(b'{"id": "chatcmpl-1", "cho', promised=500))

    with pytest.raises(ProviderConnectionError) as caught:
        await model.complete(HELLO)

    assert caught.value.code == "provider_connection_lost"
    assert caught.value.retryable
    assert caught.value.__cause__ is not None
    assert_names_call(caught.value)


async def test_closed_port_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = OpenAIProvider.from_options(
        "openai", {"base_url": f"http://127.0.0.1:{port}/v1", "allow_remote": False}
    )
    try:
        with pytest.raises(ProviderConnectionError) as caught:
            await provider.model("gpt-4o-mini").complete(HELLO)
    finally:
        await provider.aclose()

    assert caught.value.code == "provider_unreachable"
    assert caught.value.__cause__ is not None
    assert_names_call(caught.value)


async def test_slow_answer_hits_the_read_timeout(upstream: MockUpstream) -> None:
    upstream.script(CHAT, slow_reply(3.0, json_reply(openai_completion())))
    provider = OpenAIProvider.from_options("openai", options(upstream, read_timeout=0.2))
    try:
        with pytest.raises(ProviderTimeout) as caught:
            await provider.model("gpt-4o-mini").complete(HELLO)
    finally:
        await provider.aclose()

    error = caught.value
    assert error.code == "provider_timeout"
    assert error.retryable
    assert error.details["timeout"] == "read"
    assert error.details["timeout_seconds"] == 0.2
    assert isinstance(error.__cause__, TimeoutError)
    assert_names_call(error)


async def test_endless_stream_hits_the_total_timeout(upstream: MockUpstream) -> None:
    upstream.script(CHAT, sse_reply([openai_sse(openai_chunks(["a"]), done=False)], end="hang"))
    provider = OpenAIProvider.from_options(
        "openai", options(upstream, read_timeout=5.0, total_timeout=0.3)
    )
    try:
        with pytest.raises(ProviderTimeout) as caught:
            await collect(provider.model("gpt-4o-mini"))
    finally:
        await provider.aclose()

    assert caught.value.code == "provider_timeout"
    assert caught.value.details["timeout"] == "total"


@pytest.mark.parametrize(
    "bad",
    [
        {"base_url": "http://127.0.0.1:1/v1", "temperature": 0.5},
        {"base_url": "http://127.0.0.1:1/v1", "read_timeout": 0},
        {"base_url": "http://127.0.0.1:1/v1", "allow_remote": "no"},
        {"base_url": "ftp://127.0.0.1/v1"},
        {"base_url": "127.0.0.1:8000"},
    ],
)
def test_invalid_options_are_a_config_error(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        OpenAIProvider.from_options("openai", bad)

    assert caught.value.code == "provider_options_invalid"
    assert caught.value.details["provider"] == "openai"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.5.6.7", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("api.openai.com", False),
        ("localhost.example.com", False),
        ("10.0.0.1", False),
        ("0.0.0.0", False),
        ("::", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30", 30.0),
        (" 1.5 ", 1.5),
        ("-4", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("soon", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_values(value: str | None, seconds: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == seconds


@pytest.mark.parametrize(
    ("body", "message", "kind"),
    [
        (b'{"error": {"message": "bad key", "type": "auth"}}', "bad key", "auth"),
        (b'{"error": {"message": "m", "code": "rate"}}', "m", "rate"),
        (b'{"error": "model not loaded"}', "model not loaded", None),
        (b'{"object": "error", "message": "vllm says no"}', "vllm says no", None),
        (b'{"detail": "Not Found"}', "Not Found", None),
        (b'{"unexpected": 1}', '{"unexpected": 1}', None),
        (b"plain text failure", "plain text failure", None),
        (b"", "(empty body)", None),
    ],
)
def test_upstream_error_messages(body: bytes, message: str, kind: str | None) -> None:
    assert upstream_error(body) == (message, kind)


async def test_finished_streams_return_their_connection_to_the_pool(
    upstream: MockUpstream, model: OpenAIChatModel
) -> None:
    upstream.script(CHAT, sse_reply([openai_sse(openai_chunks(["a", "b"]))]))

    await collect(model)
    await collect(model)

    first, second = (received.client_port for received in upstream.requests)
    assert first == second


async def test_options_may_come_from_a_settings_dump(upstream: MockUpstream) -> None:
    upstream.script(CHAT, json_reply(openai_completion()))
    settings = OpenAISettings(
        base_url=upstream.base_url, api_key=SecretStr("sk-x"), organization="org-2"
    )
    provider = OpenAIProvider.from_options(
        "openai", {**settings.model_dump(), "allow_remote": False}
    )
    try:
        await provider.model("gpt-4o-mini").complete(HELLO)
    finally:
        await provider.aclose()

    assert upstream.requests[0].headers["authorization"] == "Bearer sk-x"
    assert upstream.requests[0].headers["openai-organization"] == "org-2"


@pytest.mark.parametrize(("max_connections", "connections"), [(1, 1), (4, 2)])
async def test_max_connections_bounds_the_pool(
    upstream: MockUpstream, max_connections: int, connections: int
) -> None:
    upstream.script(CHAT, slow_reply(0.1, json_reply(openai_completion())))
    provider = OpenAIProvider.from_options(
        "openai", options(upstream, max_connections=max_connections)
    )
    model = provider.model("gpt-4o-mini")
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(model.complete, HELLO)
            group.start_soon(model.complete, HELLO)
    finally:
        await provider.aclose()

    assert len({received.client_port for received in upstream.requests}) == connections

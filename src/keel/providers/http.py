"""The pooled HTTP client every HTTP model provider shares, and its error translation.

One :class:`HTTPClient` per provider instance owns one keep-alive connection pool
(:mod:`keel.providers.http1`; it replaced an ``aiohttp`` session, which cost about a fifth
of the gateway's CPU per request), created lazily in the running event loop and closed by
:meth:`HTTPClient.aclose`. It sends JSON, returns parsed JSON or Server-Sent Events, and
turns every connection failure and timeout into a ``keel.core.errors`` type whose details
name the provider and the model.

It also holds the guard that keeps tests off paid APIs: with ``allow_remote`` false, a
request to any host that is not loopback fails with ``model_requests_blocked`` before a
connection (or even a DNS lookup) is attempted. Redirects are never followed, so a
loopback endpoint cannot bounce a request elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
from collections.abc import AsyncGenerator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import orjson
from pydantic import ValidationError

from keel.core.errors import (
    ConfigError,
    InvalidInputError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderMalformedResponse,
    ProviderStreamError,
    ProviderTimeout,
    ProviderUnavailable,
)
from keel.core.messages import ModelRef
from keel.core.sse import SSEEvent, SSEParser
from keel.providers.base import ModelProfile
from keel.providers.http1 import ConnectionPool, ConnectTimeout, ReadTimeout, Response
from keel.settings import HTTPProviderSettings

SettingsT = TypeVar("SettingsT", bound=HTTPProviderSettings)

_SNIPPET = 200  # characters of an upstream body quoted in an error


def parse_options(
    name: str, options: Mapping[str, Any], schema: type[SettingsT]
) -> tuple[SettingsT, bool]:
    """Validate a provider's plain options mapping: ``schema`` keys plus ``allow_remote``."""
    values = dict(options)
    allow_remote = values.pop("allow_remote", True)
    if not isinstance(allow_remote, bool):
        raise ConfigError(
            f"option allow_remote of provider {name!r} must be true or false, got {allow_remote!r}",
            code="provider_options_invalid",
            provider=name,
        )
    try:
        settings = schema.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or 'options'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(
            f"options of provider {name!r} are invalid ({problems}); "
            f"allowed keys: {', '.join(sorted(schema.model_fields))}, allow_remote",
            code="provider_options_invalid",
            provider=name,
        ) from exc
    return settings, allow_remote


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def upstream_error(raw: bytes) -> tuple[str, str | None]:
    """The upstream's own error message (and type) from an error body, JSON or not."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw[:_SNIPPET].decode("utf-8", "replace").strip()
        return text or "(empty body)", None
    message: Any = None
    kind: Any = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            kind = error.get("type") or error.get("code")
        elif isinstance(error, str):
            message = error
        message = message or data.get("message") or data.get("detail")
    if not isinstance(message, str) or not message:
        message = raw[:_SNIPPET].decode("utf-8", "replace")
    return message, kind if isinstance(kind, str) else None


def malformed_response(provider: str, model: str, problem: str) -> ProviderMalformedResponse:
    """A body that parsed but does not have the shape the wire format promises."""
    return ProviderMalformedResponse(
        f"{provider} sent a response for model {model!r} that Keel cannot read: {problem}. "
        "Check that base_url points at the right kind of API (including its version path).",
        provider=provider,
        model=model,
    )


def stream_broken(provider: str, model: str, problem: str) -> ProviderStreamError:
    """The stream ended without its terminator; the answer is incomplete."""
    return ProviderStreamError(
        f"the {provider} stream for model {model!r} broke: {problem}. "
        "The answer is incomplete; retry the request.",
        provider=provider,
        model=model,
    )


def event_json(event: SSEEvent, provider: str, model: str) -> dict[str, Any]:
    """The JSON object an SSE event carries, or a malformed-response error."""
    try:
        data = orjson.loads(event.data)
    except orjson.JSONDecodeError as exc:
        raise malformed_response(
            provider, model, f"a stream event is not JSON ({event.data[:_SNIPPET]!r})"
        ) from exc
    if not isinstance(data, dict):
        raise malformed_response(provider, model, "a stream event is not a JSON object")
    return data


def stream_upstream_error(provider: str, model: str, error: Any) -> ProviderStreamError:
    """The upstream reported an error event in the middle of a stream."""
    message: Any = error.get("message") if isinstance(error, dict) else error
    kind: Any = (error.get("type") or error.get("code")) if isinstance(error, dict) else None
    return ProviderStreamError(
        f"{provider} reported an error in the middle of the stream for model {model!r}: "
        f"{message}. The answer is incomplete; retry the request or fall back to another model.",
        code="provider_stream_upstream_error",
        provider=provider,
        model=model,
        upstream_message=str(message),
        upstream_error_type=str(kind) if kind is not None else None,
    )


class HTTPClient:
    """JSON and SSE over one pooled session per provider instance."""

    __slots__ = ("_base", "_blocked_host", "_headers", "_loop", "_pool", "_settings", "provider")

    def __init__(
        self,
        provider: str,
        settings: HTTPProviderSettings,
        *,
        allow_remote: bool,
        headers: Mapping[str, str],
    ) -> None:
        parts = urlsplit(settings.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"base_url {settings.base_url!r} of provider {provider!r} must be an http(s) "
                "URL with a host, for example http://127.0.0.1:11434/v1",
                code="provider_options_invalid",
                provider=provider,
            )
        self.provider = provider
        self._settings = settings
        self._base = settings.base_url.rstrip("/")
        blocked = not allow_remote and not is_loopback_host(parts.hostname)
        self._blocked_host = parts.hostname if blocked else None
        self._headers = {"Content-Type": "application/json", "User-Agent": "keel", **headers}
        self._pool: ConnectionPool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def base_url(self) -> str:
        return self._base

    async def post_json(self, path: str, body: Mapping[str, Any], model: str) -> Any:
        """POST ``body`` as JSON to ``base_url + path`` and return the decoded JSON answer."""
        pool = self._pool_for(model)
        payload = self._encode(body, model)
        started = False
        try:
            async with pool.post(path, payload, self._settings.total_timeout) as resp:
                started = True
                raw = await resp.read()
                if resp.status >= 300:
                    raise self._status_error(resp, raw, model)
        except (TimeoutError, ConnectionError) as exc:
            raise self._failure(exc, model, started=started, streaming=False) from exc
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            snippet = raw[:_SNIPPET].decode("utf-8", "replace")
            raise malformed_response(
                self.provider, model, f"the body is not JSON ({snippet!r})"
            ) from exc

    async def stream_events(
        self, path: str, body: Mapping[str, Any], model: str
    ) -> AsyncGenerator[SSEEvent, None]:
        """POST ``body`` and yield the Server-Sent Events of the answer as they arrive.

        Ends when the upstream closes the body; deciding whether the stream reached its
        terminator is the wire format's job (see :func:`stream_broken`).
        """
        pool = self._pool_for(model)
        payload = self._encode(body, model)
        started = False
        try:
            async with pool.post(path, payload, self._settings.total_timeout) as resp:
                started = True
                if resp.status >= 300:
                    raise self._status_error(resp, await resp.read(), model)
                if resp.content_type == "application/json":
                    raise malformed_response(
                        self.provider, model, "asked for a stream but got a JSON body"
                    )
                parser = SSEParser()
                while (chunk := await resp.next_chunk()) is not None:
                    for event in parser.feed(chunk):
                        yield event
                for event in parser.close():
                    yield event
        except (TimeoutError, ConnectionError) as exc:
            raise self._failure(exc, model, started=started, streaming=True) from exc

    async def aclose(self) -> None:
        """Close the pooled connections. The client reopens lazily if used again."""
        pool, self._pool = self._pool, None
        if pool is not None and self._loop is asyncio.get_running_loop():
            pool.close()

    def _pool_for(self, model: str) -> ConnectionPool:
        """The connection pool of the running loop, after the remote-call guard."""
        if self._blocked_host is not None:
            raise self._blocked(model)
        pool = self._pool
        loop = asyncio.get_running_loop()
        if pool is None or self._loop is not loop:
            # Connections belong to the loop they were made in; a new loop (a second
            # ``asyncio.run``) gets a new pool.
            settings = self._settings
            pool = ConnectionPool(
                self._base,
                limit=settings.max_connections,
                connect_timeout=settings.connect_timeout,
                read_timeout=settings.read_timeout,
                headers=self._headers,
            )
            self._pool, self._loop = pool, loop
        return pool

    def _blocked(self, model: str) -> ProviderUnavailable:
        return ProviderUnavailable(
            f"model requests to {self._blocked_host!r} are blocked because allow_remote is "
            "false (the test suite sets it so no test can reach a paid API); point base_url "
            "at a loopback server or set KEEL_PROVIDERS__ALLOW_REMOTE=true",
            code="model_requests_blocked",
            provider=self.provider,
            model=model,
            host=self._blocked_host,
        )

    def _encode(self, body: Mapping[str, Any], model: str) -> bytes:
        try:
            return orjson.dumps(body)
        except TypeError as exc:
            raise InvalidInputError(
                f"the request for {self.provider} model {model!r} cannot be sent as JSON: {exc}; "
                "pass only JSON values (str, numbers, bools, None, lists, dicts) in extra fields",
                code="request_not_serializable",
                provider=self.provider,
                model=model,
            ) from exc

    def _status_error(self, resp: Response, raw: bytes, model: str) -> ProviderHTTPError:
        status = resp.status
        upstream_message, kind = upstream_error(raw)
        details: dict[str, Any] = {"upstream_message": upstream_message}
        if kind:
            details["upstream_error_type"] = kind
        if status in (429, 503):
            retry_after = _retry_after_ms(resp.headers.get("retry-after-ms"))
            if retry_after is None:
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
            if retry_after is not None:
                details["retry_after"] = retry_after
        if 300 <= status < 400:
            upstream_message = f"redirect to {resp.headers.get('location', '?')}"
        return ProviderHTTPError(
            f"{self.provider} answered HTTP {status} for model {model!r}: "
            f"{upstream_message}. {_status_hint(status, details.get('retry_after'))}",
            upstream_status=status,
            provider=self.provider,
            model=model,
            **details,
        )

    def _failure(
        self, exc: BaseException, model: str, *, started: bool, streaming: bool
    ) -> ProviderError:
        who = {"provider": self.provider, "model": model}
        if isinstance(exc, TimeoutError):
            kind, seconds = self._timeout_kind(exc)
            return ProviderTimeout(
                f"{self.provider} did not answer model {model!r} within the {kind} timeout "
                f"of {seconds}s; raise the provider's {kind}_timeout option or check the "
                "upstream's load",
                timeout=kind,
                timeout_seconds=seconds,
                **who,
            )
        if started and streaming:
            return stream_broken(self.provider, model, f"the connection was lost ({exc})")
        if started:
            return ProviderConnectionError(
                f"the connection to {self.provider} was lost while reading the answer for model "
                f"{model!r} ({exc}); retry the request",
                code="provider_connection_lost",
                **who,
            )
        return ProviderConnectionError(
            f"cannot reach {self.provider} at {self._base} for model {model!r} ({exc}); check "
            "base_url and that the server is running",
            **who,
        )

    def _timeout_kind(self, exc: TimeoutError) -> tuple[str, float]:
        settings = self._settings
        if isinstance(exc, ConnectTimeout):
            return "connect", settings.connect_timeout
        if isinstance(exc, ReadTimeout):
            return "read", settings.read_timeout
        return "total", settings.total_timeout


def _retry_after_ms(value: str | None) -> float | None:
    """OpenAI's non-standard ``retry-after-ms`` header, when present and numeric."""
    try:
        millis = float(value) if value else math.nan
    except ValueError:
        return None
    return max(0.0, millis / 1000) if math.isfinite(millis) else None


def _status_hint(status: int, retry_after: float | None) -> str:
    if status in (401, 403):
        return "Check the provider's api_key and its permissions."
    if status == 404:
        return "Check the model name and the provider's base_url."
    if status == 429:
        wait = f" after {retry_after:g}s" if retry_after is not None else " later"
        return f"The upstream is rate limiting: retry{wait} or lower the request rate."
    if 300 <= status < 400:
        return "Redirects are not followed; set base_url to the final URL."
    if status < 500:
        return "The upstream rejected the request; check the parameters and extra fields."
    return "The upstream failed; retry later or fall back to another model."


class _ClientProvider(Protocol):
    name: str
    client: HTTPClient

    def profile(self, name: str) -> ModelProfile: ...


class HTTPChatModel:
    """What every model behind an HTTP provider holds: the provider's pooled client, its
    own name and ``provider:model`` ref, and its profile. Wire formats subclass it."""

    __slots__ = ("_client", "_name", "_profile", "_ref")

    def __init__(self, provider: _ClientProvider, name: str) -> None:
        self._client = provider.client
        self._name = name
        self._ref = ModelRef(provider.name, name)
        self._profile = provider.profile(name)

    @property
    def ref(self) -> ModelRef:
        return self._ref

    @property
    def profile(self) -> ModelProfile:
        return self._profile

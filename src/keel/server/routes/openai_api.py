"""OpenAI-compatible endpoints: ``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/models``.

The handlers read the body with orjson and hand the dict to the gateway; no validation
model sits on this hot path (the wire module checks each field as it reads it).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from keel.catalog import PipelineRef
from keel.core.usage import Usage
from keel.deploy.router import RequestKeys
from keel.gateway import wire
from keel.gateway.errors import BadRequest, BodyTooLarge
from keel.gateway.keys import Principal
from keel.gateway.service import CallContext, Gateway
from keel.gateway.targets import PIPELINE_PREFIX
from keel.server.event_stream import EventStream
from keel.server.responses import JSONBytes
from keel.server.schemas import ERRORS

router = APIRouter(tags=["openai"])

_BYPASS = ("no-cache", "no-store", "bypass")


def _header(request: Request, name: bytes) -> str | None:
    """One request header, read from the raw ASGI list (Starlette's ``Headers.get`` goes
    through the generic ``Mapping.get`` and decodes every header it passes)."""
    for key, value in request.scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON, refusing bodies over ``limit`` bytes before reading them whole."""
    declared = _header(request, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", code="body_not_json") from exc


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(
        f"the request body is larger than {limit} bytes (gateway.max_body_bytes)", limit=limit
    )


def call_context(request: Request, model: str) -> CallContext:
    """Who calls, after checking the key may call ``model``; usage counts against its limits."""
    correlation = request.state.correlation
    principal: Principal = request.state.principal
    if model.startswith(PIPELINE_PREFIX):
        principal.require_pipeline(PipelineRef.parse(model[len(PIPELINE_PREFIX) :]).name)
    else:
        principal.require_model(model)
    limiter = request.app.state.auth.limiter

    async def on_usage(usage: Usage, cost: Decimal) -> None:
        await limiter.settle(principal, usage, cost)

    cache_control = _header(request, b"cache-control") or ""
    bypass = _header(request, b"x-keel-cache") == "bypass" or any(
        word in cache_control for word in _BYPASS
    )
    return CallContext(
        correlation.request_id,
        correlation.parent,
        principal.caller,
        bypass,
        on_usage,
        groups=principal.groups,
        key_id=principal.key_id,
        keys=RequestKeys(request.headers, None, principal.key_id),
    )


@router.post("/v1/chat/completions", summary="OpenAI-compatible chat completions", responses=ERRORS)
async def chat_completions(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    body = await read_json(request, gateway.max_body_bytes)
    call = wire.parse_chat(body)
    ctx = call_context(request, call.model)
    request.state.metric_labels = {"model": call.model}
    if call.stream:
        streamed = await gateway.stream(call, body, ctx)
        stream_headers = {
            "x-keel-model": streamed.model_id,
            "x-keel-trace-id": streamed.trace_id,
            "cache-control": "no-cache",
        }
        if streamed.cached:
            stream_headers["x-keel-cache"] = "hit"
        return EventStream(streamed.events, headers=stream_headers)
    answer = await gateway.chat(call, body, ctx)
    keel = answer.body.get("keel")
    if keel is not None:
        request.state.metric_labels = {
            "model": keel["model"],
            "pipeline": keel["pipeline"],
            "version": keel["version"],
        }
    headers = {"x-keel-model": answer.model_id, "x-keel-trace-id": answer.trace_id}
    if answer.cached:
        headers["x-keel-cache"] = "hit"
    return JSONBytes(answer.body, headers=headers)


@router.post("/v1/embeddings", summary="OpenAI-compatible embeddings", responses=ERRORS)
async def embeddings(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    body = await read_json(request, gateway.max_body_bytes)
    model = body.get("model") if isinstance(body, dict) else None
    ctx = call_context(request, model if isinstance(model, str) else "")
    request.state.metric_labels = {"model": model if isinstance(model, str) else ""}
    answer = await gateway.embed(body, ctx)
    headers = {"x-keel-model": answer.model_id, "x-keel-trace-id": answer.trace_id}
    return JSONBytes(answer.body, headers=headers)


@router.get("/v1/models", summary="Aliases, pipelines and the default model")
def list_models(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    return JSONBytes({"object": "list", "data": gateway.model_list()})

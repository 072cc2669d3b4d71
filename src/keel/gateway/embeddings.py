"""``/v1/embeddings``: the request read, the models called resiliently (the same retries,
breaker, concurrency bound and fallbacks as chat), the answer written in OpenAI's shape.
The gateway traces each call like a chat completion (see ``Gateway.embed``)."""

from __future__ import annotations

import base64
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from keel.core.errors import KeelError, ProviderError
from keel.core.usage import Usage
from keel.gateway.errors import BadRequest, CircuitOpen
from keel.gateway.resilience import ModelCaller, RetryHook
from keel.gateway.targets import Target, Targets


def parse_inputs(body: Any) -> tuple[str, list[str], str]:
    """The model name, the texts and the encoding format (``float`` or ``base64``)."""
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise BadRequest("model is required: a provider:model id or an alias")
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise BadRequest(
            "input must be a string or a non-empty list of strings (token arrays are not accepted)",
            code="input_invalid",
        )
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise BadRequest("encoding_format must be float or base64", code="input_invalid")
    return body["model"], texts, encoding


def _encode(vector: Sequence[float], encoding: str) -> Any:
    if encoding == "float":
        return vector
    return base64.b64encode(array("f", vector).tobytes()).decode()


@dataclass(frozen=True, slots=True)
class Embedded:
    body: dict[str, Any]  # the OpenAI ``list`` of embeddings
    model_id: str  # the provider:model that served
    usage: Usage
    cost_usd: Decimal


def embedding_target(targets: Targets, name: str) -> Target:
    target = targets.resolve(name)
    if target.pipeline is not None:
        raise BadRequest("pipelines do not embed text; name an embedding model or alias")
    return target


async def embed(
    targets: Targets,
    caller: ModelCaller,
    target: Target,
    inputs: tuple[list[str], str],
    hooks: tuple[RetryHook, Callable[[str, KeelError], None]],
) -> Embedded:
    """Embed ``inputs`` (texts, encoding format) through the target's chain: each model under
    the caller's timeouts, retries, breaker and concurrency bound; a provider failure falls
    back to the next model. ``hooks`` are told of each retry and each fallback."""
    texts, encoding = inputs
    name = target.name
    on_retry, on_fallback = hooks
    for model_id in target.chain:
        model = targets.model(model_id)
        try:
            vectors = await caller.embed(model, texts, model_id, on_retry)
        except KeelError as exc:
            if not falls_back(exc) or model_id == target.chain[-1]:
                raise
            on_fallback(model_id, exc)
            continue
        tokens = sum(model.profile.count_text(text) for text in texts)
        usage = Usage(tokens, 0)
        out = {
            "object": "list",
            "model": name,
            "data": [
                {"object": "embedding", "index": i, "embedding": _encode(v, encoding)}
                for i, v in enumerate(vectors)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        cost = caller.priced(model_id, model.profile).cost(usage)
        return Embedded(out, model_id, usage, cost)
    raise AssertionError("a target always has at least one model")


def falls_back(exc: BaseException) -> bool:
    """A failure another model may not share: the provider's fault, not the request's."""
    if isinstance(exc, CircuitOpen):
        return True
    return isinstance(exc, ProviderError) and exc.status != 400

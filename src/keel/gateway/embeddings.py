"""``/v1/embeddings``: the request read and the answer written in OpenAI's shape."""

from __future__ import annotations

import base64
from array import array
from collections.abc import Sequence
from typing import Any

from keel.core.errors import KeelError
from keel.gateway.errors import BadRequest
from keel.gateway.targets import Targets


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


async def embed(targets: Targets, body: Any) -> dict[str, Any]:
    name, texts, encoding = parse_inputs(body)
    target = targets.resolve(name)
    if target.pipeline is not None:
        raise BadRequest("pipelines do not embed text; name an embedding model or alias")
    last: KeelError | None = None
    for model_id in target.chain:
        model = targets.model(model_id)
        try:
            vectors = await model.embed(texts)
        except KeelError as exc:
            last = exc
            continue
        tokens = sum(model.profile.count_text(text) for text in texts)
        return {
            "object": "list",
            "model": name,
            "data": [
                {"object": "embedding", "index": i, "embedding": _encode(v, encoding)}
                for i, v in enumerate(vectors)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    assert last is not None
    raise last

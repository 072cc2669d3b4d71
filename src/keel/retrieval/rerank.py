"""Rerankers: none, an LLM judging relevance through the provider registry, or a
sentence-transformers cross-encoder (optional extra).

The LLM reranker is treated as the faulty component it is: when its answer cannot be parsed
or the call fails, the fused order is kept and the failure is recorded, never raised.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING

from keel.core.errors import ConfigError, KeelError
from keel.core.messages import ChatRequest, GenerationParams, Message
from keel.retrieval.search import Reranker
from keel.retrieval.types import Hit

if TYPE_CHECKING:
    from keel.providers.registry import ProviderRegistry

_NUMBER = re.compile(r"\d+")
_PROMPT = (
    "Rank the passages by how well they answer the question. Answer with the passage "
    "numbers only, most relevant first, separated by commas.\n\nQuestion: {query}\n\n{passages}"
)


class LLMReranker:
    def __init__(self, model_id: str, registry: ProviderRegistry, max_chars: int = 600) -> None:
        self.name = f"llm:{model_id}"
        self._model_id = model_id
        self._registry = registry
        self._max_chars = max_chars
        self.last_error: str | None = None

    async def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        passages = "\n\n".join(f"[{n}] {h.text[: self._max_chars]}" for n, h in enumerate(hits, 1))
        model = self._registry.model(self._model_id)
        request = ChatRequest(
            model.ref.name,
            (Message("user", _PROMPT.format(query=query, passages=passages)),),
            GenerationParams(temperature=0, max_tokens=8 * len(hits) + 16),
        )
        try:
            response = await model.complete(request)
        except KeelError as exc:
            self.last_error = exc.code
            return hits
        order: list[int] = []
        for token in _NUMBER.findall(response.text):
            n = int(token)
            if 1 <= n <= len(hits) and n - 1 not in order:
                order.append(n - 1)
        if not order:
            self.last_error = "rerank_unparseable"
            return hits
        order += [i for i in range(len(hits)) if i not in order]
        ranked = [hits[i] for i in order]
        for position, hit in enumerate(ranked):
            hit.rerank_score = float(len(ranked) - position)
        return ranked


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` scoring (query, passage) pairs.

    Nothing is downloaded: ``model`` is a saved model's folder, looked up first under
    ``models_dir`` (the ``retrieval.cross_encoder_dir`` setting), then as a path of its own.
    """

    def __init__(self, model: str, models_dir: Path | None = None) -> None:
        try:
            from sentence_transformers import CrossEncoder
        except ImportError as exc:
            raise ConfigError(
                "the cross-encoder reranker needs the optional extra: "
                "pip install 'keel[sentence-transformers]'",
                code="reranker_unavailable",
            ) from exc
        folder = local_model(model, models_dir)
        self.name = f"cross-encoder:{model}"
        self._model = CrossEncoder(str(folder), local_files_only=True)

    async def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        scores = await asyncio.to_thread(self._model.predict, [(query, h.text) for h in hits])
        for hit, score in zip(hits, scores, strict=True):
            hit.rerank_score = float(score)
        return sorted(hits, key=lambda h: -(h.rerank_score or 0.0))


def local_model(model: str, models_dir: Path | None) -> Path:
    """The folder of a saved cross-encoder, or a ``reranker_model_missing`` error."""
    candidates = [models_dir / model] if models_dir is not None else []
    candidates.append(Path(model).expanduser())
    for folder in candidates:
        if (folder / "config.json").is_file():
            return folder
    where = f" under {models_dir}" if models_dir is not None else ""
    raise ConfigError(
        f"no saved cross-encoder {model!r}{where}: models are never downloaded at run time; "
        "save one with CrossEncoder(...).save(PATH) and set retrieval.cross_encoder_dir "
        "(or name its folder in the spec)",
        code="reranker_model_missing",
    )


def build_reranker(
    spec: str, registry: ProviderRegistry | None, models_dir: Path | None = None
) -> Reranker | None:
    """``none``, ``llm:provider:model`` or ``cross-encoder:MODEL``."""
    kind, _, rest = spec.partition(":")
    if kind == "none":
        return None
    if kind == "llm" and rest and registry is not None:
        return LLMReranker(rest, registry)
    if kind == "cross-encoder" and rest:
        return CrossEncoderReranker(rest, models_dir)
    raise ConfigError(
        f"unknown reranker {spec!r}; use none, llm:provider:model or cross-encoder:MODEL",
        code="reranker_unknown",
    )

"""Embedders: plugins from the ``keel.embedders`` entry points, resolved by embedder id.

Ids: ``wordllama`` (the bundled default: 256 dimensions, numpy only, ships its weights),
``sentence-transformers:MODEL`` (optional extra, needs torch; the model must already be on
disk), or any ``provider:model`` the provider registry can embed with
(``openai:text-embedding-3-small``, an Ollama endpoint, ``testing:echo`` in tests).

Every embedder returns float32 rows of unit length, so cosine similarity is a dot product.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from keel.core.errors import ConfigError, KeelError

if TYPE_CHECKING:
    from keel.providers.registry import ProviderRegistry

ENTRY_POINT_GROUP = "keel.embedders"
DEFAULT_EMBEDDER = "wordllama"


class Embedder(Protocol):
    id: str  # recorded on every index version

    async def embed(self, texts: Sequence[str]) -> np.ndarray: ...


EmbedderFactory = Callable[[str, "ProviderRegistry | None"], Embedder]


@dataclass(frozen=True, slots=True)
class EmbedderPlugin:
    """What a ``keel.embedders`` entry point exposes: ``factory(model, registry)``."""

    name: str
    factory: EmbedderFactory


def normalize(vectors: Any) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        array = array.reshape(len(array), -1)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalized: np.ndarray = array / norms
    return normalized


class WordLlamaEmbedder:
    """WordLlama's bundled 256-dimensional model, loaded from the installed package only.

    A WordLlama embedding is the mean of the text's token embeddings, normalized. WordLlama
    computes it over batches padded to their longest text; here the token ids of a whole
    batch are counted into a sparse (texts x vocabulary) matrix and multiplied by the
    embedding table, which gives the same vectors (to float32 rounding) without padding or
    a (texts x tokens x dimensions) intermediate.
    """

    def __init__(self, dim: int = 256) -> None:
        from wordllama import WordLlama  # deferred: loads weights (~0.15 s)

        spec = importlib.util.find_spec("wordllama")
        assert spec is not None and spec.origin is not None
        model = WordLlama.load(dim=dim, cache_dir=Path(spec.origin).parent, disable_download=True)
        self._table: np.ndarray = np.ascontiguousarray(model.embedding, dtype=np.float32)
        self._tokenizer = _unpadded(model.tokenizer)
        self.dim = dim
        self.id = f"wordllama:l2_supercat_{dim}"

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        from scipy import sparse  # deferred: only embedding needs it

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encoded = self._tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
        rows = [e.ids for e in encoded]
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        ids = np.fromiter(itertools.chain.from_iterable(rows), np.int64, int(lengths.sum()))
        np.clip(ids, 0, len(self._table) - 1, out=ids)
        counts = sparse.csr_matrix(
            (np.ones(len(ids), dtype=np.float32), ids, np.concatenate([[0], np.cumsum(lengths)])),
            shape=(len(rows), len(self._table)),
        )
        counts.sum_duplicates()
        return normalize(counts @ self._table)  # the mean's direction: the sum's

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) <= 16:  # a query: cheaper inline than a thread hop
            return self.embed_sync(texts)
        return await asyncio.to_thread(self.embed_sync, texts)


class ProviderEmbedder:
    """Embeddings from a provider model (``provider:model``) through the provider registry."""

    def __init__(self, model_id: str, registry: ProviderRegistry, batch: int = 128) -> None:
        self.id = model_id
        self._registry = registry
        self._batch = batch
        registry.model(model_id)  # an unknown provider fails here, not at the first ingest

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        model = self._registry.model(self.id)
        rows: list[list[float]] = []
        for start in range(0, len(texts), self._batch):
            rows.extend(await model.embed(texts[start : start + self._batch]))
        return normalize(rows) if rows else np.zeros((0, 0), dtype=np.float32)


class SentenceTransformerEmbedder:
    """A sentence-transformers model already on disk (extra ``keel[sentence-transformers]``)."""

    def __init__(self, model: str) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError(
                "the sentence-transformers embedder needs the optional extra: "
                "pip install 'keel[sentence-transformers]'",
                code="embedder_unavailable",
            ) from exc
        self._model = SentenceTransformer(model, local_files_only=True)
        self.id = f"sentence-transformers:{model}"

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = await asyncio.to_thread(self._model.encode, list(texts))
        return normalize(vectors)


def _unpadded(tokenizer: Any) -> Any:
    """A copy of WordLlama's tokenizer that neither pads nor truncates."""
    from tokenizers import Tokenizer

    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.no_padding()
    copy.no_truncation()
    return copy


def _wordllama(model: str, _registry: ProviderRegistry | None) -> Embedder:
    return WordLlamaEmbedder(int(model.rsplit("_", 1)[-1]) if model else 256)


def _provider(model: str, registry: ProviderRegistry | None) -> Embedder:
    if registry is None:
        raise ConfigError(f"embedder {model!r} needs the provider registry")
    return ProviderEmbedder(model, registry)


def _sentence_transformers(model: str, _registry: ProviderRegistry | None) -> Embedder:
    return SentenceTransformerEmbedder(model or "all-MiniLM-L6-v2")


wordllama_plugin = EmbedderPlugin("wordllama", _wordllama)
provider_plugin = EmbedderPlugin("provider", _provider)
sentence_transformers_plugin = EmbedderPlugin("sentence-transformers", _sentence_transformers)


class EmbedderRegistry:
    """Embedder plugins by name, and built embedders cached by id (built once per process)."""

    def __init__(
        self, plugins: Sequence[EmbedderPlugin], registry: ProviderRegistry | None = None
    ) -> None:
        self._plugins = {plugin.name: plugin for plugin in plugins}
        self._registry = registry
        self._built: dict[str, Embedder] = {}

    @classmethod
    def from_entry_points(cls, registry: ProviderRegistry | None = None) -> EmbedderRegistry:
        plugins = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            plugin = ep.load()
            if not isinstance(plugin, EmbedderPlugin):
                raise ConfigError(f"entry point {ep.name!r} is not an EmbedderPlugin")
            plugins.append(plugin)
        return cls(plugins, registry)

    def get(self, embedder_id: str) -> Embedder:
        found = self._built.get(embedder_id)
        if found is None:
            found = self._built[embedder_id] = self._build(embedder_id)
        return found

    def _build(self, embedder_id: str) -> Embedder:
        name, _, model = embedder_id.partition(":")
        plugin = self._plugins.get(name)
        try:
            if plugin is not None and name != "provider":
                return plugin.factory(model, self._registry)
            if ":" not in embedder_id or "provider" not in self._plugins:
                raise ConfigError(
                    f"unknown embedder {embedder_id!r}; use one of "
                    f"{sorted(p for p in self._plugins if p != 'provider')} or provider:model",
                    code="embedder_unknown",
                )
            target = model if name == "provider" else embedder_id
            return self._plugins["provider"].factory(target, self._registry)
        except KeelError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"embedder {embedder_id!r} failed to load: {exc}", code="embedder_unavailable"
            ) from exc

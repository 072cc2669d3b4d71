"""Embedder plugins: the bundled WordLlama, provider embeddings, clear errors otherwise."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from keel.core.errors import ConfigError, KeelError
from keel.retrieval.embedders import EmbedderRegistry
from keel.retrieval.search import SearchRequest
from keel.retrieval.service import RetrievalConfig, RetrievalService

from .conftest import write_corpus

pytestmark = pytest.mark.anyio


async def test_wordllama_is_semantic_and_unit_length(embedders: EmbedderRegistry) -> None:
    embedder = embedders.get("wordllama")
    assert embedder.id == "wordllama:l2_supercat_256"
    vectors = await embedder.embed(["refund my payment", "return the money I paid", "jazz piano"])
    assert vectors.shape == (3, 256)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


async def test_wordllama_vectors_equal_the_librarys_own(embedders: EmbedderRegistry) -> None:
    """Pooling without padding gives WordLlama's vectors: texts of very different lengths
    in one batch, unicode, and more texts than one of the library's batches."""
    from wordllama import WordLlama

    spec = importlib.util.find_spec("wordllama")
    assert spec is not None and spec.origin is not None
    library = WordLlama.load(dim=256, cache_dir=Path(spec.origin).parent, disable_download=True)
    texts = ["a", "Refunds take five business days.", "Grüße aus Köln — ça va? 東京", ""]
    texts += [f"Invoice {i} " + "was paid by bank transfer " * (i % 40) for i in range(150)]
    ours = await embedders.get("wordllama").embed(texts)
    theirs = library.embed(texts[:3] + texts[4:], norm=True)
    np.testing.assert_allclose(np.delete(ours, 3, axis=0), theirs, atol=2e-6)
    assert not ours[3].any()  # an empty text has no tokens: a zero vector, not NaN


async def test_a_provider_model_embeds_a_collection(
    embedders: EmbedderRegistry, tmp_path: Path
) -> None:
    service = RetrievalService(
        RetrievalConfig(f"sqlite:///{tmp_path / 'r.db'}", embedder="testing:echo")
    )
    service.embedders = embedders
    try:
        docs = write_corpus(tmp_path)
        report = await service.ingest("kb", docs)
        assert report.embedder == "testing:echo"
        assert service.index.collection("kb").embedder == "testing:echo"
        # hash vectors are not semantic, so the keyword half of hybrid search finds it
        result = await service.search(SearchRequest("kb", "refunds business days"))
        assert result.hits[0].source.endswith("billing.md")
    finally:
        service.close()


def test_unknown_and_unavailable_embedders_fail_clearly(embedders: EmbedderRegistry) -> None:
    with pytest.raises(ConfigError) as unknown:
        embedders.get("nonsense")
    assert unknown.value.code == "embedder_unknown"
    with pytest.raises(KeelError) as missing:
        embedders.get("nosuchprovider:model")
    assert missing.value.code == "provider_unknown"
    if importlib.util.find_spec("sentence_transformers") is None:
        with pytest.raises(ConfigError) as extra:
            embedders.get("sentence-transformers:all-MiniLM-L6-v2")
        assert "keel[sentence-transformers]" in extra.value.message

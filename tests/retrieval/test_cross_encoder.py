"""The cross-encoder reranker (optional extra) loads a saved model from a local folder.

No package on PyPI ships a trained cross-encoder, and nothing may be downloaded at run time,
so the test saves a tiny, randomly initialised BERT cross-encoder of its own and checks the
real loading code and that hits come back in the model's score order. It says nothing about
ranking quality, which depends on the model a deployment saves there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.core.errors import ConfigError
from keel.retrieval.rerank import build_reranker
from keel.retrieval.types import Hit

pytestmark = pytest.mark.anyio

WORDS = [
    "refund",
    "invoice",
    "card",
    "days",
    "business",
    "glacier",
    "fjord",
    "policy",
    "bank",
    "the",
    "a",
    "of",
    "takes",
]


def _hits() -> list[Hit]:
    texts = [
        "Refunds take five business days.",
        "Glaciers carve fjords.",
        "The card policy of the bank.",
        "Invoices are sent monthly.",
    ]
    return [Hit(n, n, f"doc{n}", text, "", {}) for n, text in enumerate(texts)]


def _save_tiny_cross_encoder(folder: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    folder.mkdir(parents=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (folder / "vocab.txt").write_text("\n".join(specials + WORDS) + "\n")
    tokenizer = transformers.BertTokenizerFast(str(folder / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=len(specials) + len(WORDS),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=1,
    )
    transformers.BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


async def test_a_saved_cross_encoder_reranks_by_its_scores(tmp_path: Path) -> None:
    pytest.importorskip(
        "sentence_transformers",
        reason="the cross-encoder reranker is an optional extra: "
        "pip install 'keel[sentence-transformers]'",
    )
    from sentence_transformers import CrossEncoder

    _save_tiny_cross_encoder(tmp_path / "models" / "tiny")
    reranker = build_reranker("cross-encoder:tiny", None, tmp_path / "models")
    assert reranker is not None and reranker.name == "cross-encoder:tiny"
    query = "how long does a refund take"
    ranked = await reranker.rerank(query, _hits())
    model = CrossEncoder(str(tmp_path / "models" / "tiny"), local_files_only=True)
    expected = model.predict([(query, h.text) for h in _hits()])
    by_text = {h.text: float(s) for h, s in zip(_hits(), expected, strict=True)}
    assert [h.rerank_score for h in ranked] == pytest.approx([by_text[h.text] for h in ranked])
    scores = [h.rerank_score or 0.0 for h in ranked]
    assert scores == sorted(scores, reverse=True) and len(ranked) == 4


def test_a_missing_local_model_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip(
        "sentence_transformers",
        reason="the cross-encoder reranker is an optional extra: "
        "pip install 'keel[sentence-transformers]'",
    )
    with pytest.raises(ConfigError) as info:
        build_reranker("cross-encoder:ms-marco-MiniLM-L-6-v2", None, tmp_path)
    assert info.value.code == "reranker_model_missing"
    assert "never downloaded" in info.value.message


def test_without_the_extra_the_error_names_the_install(tmp_path: Path) -> None:
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError) as info:
            build_reranker("cross-encoder:tiny", None, tmp_path)
        assert info.value.code == "reranker_unavailable"
        assert "keel[sentence-transformers]" in info.value.message
    else:
        pytest.skip("sentence-transformers is installed here; the missing-extra path is moot")

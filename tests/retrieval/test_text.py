"""Chunking, cleaning, duplicate detection, PII masking and fusion: the pure parts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.core.errors import InvalidInputError
from keel.retrieval.bm25 import KeywordIndex
from keel.retrieval.chunking import Chunker, load_tokenizer, markdown_sections
from keel.retrieval.cleaning import Deduper, clean_text, hamming, simhash
from keel.retrieval.filters import validate
from keel.retrieval.sanitize import RegexSanitizer
from keel.retrieval.search import keyword_terms, mmr, rrf

CHUNKER = Chunker(max_tokens=40, overlap=8)
ENCODING = load_tokenizer()

MARKDOWN = """# Guide

Intro paragraph.

## Install

```sh
# not a heading inside a fence
make install
```

### From source

Clone it.

## Upgrade

Run migrations.
"""


def test_markdown_sections_follow_headings_not_fenced_comments() -> None:
    sections = markdown_sections(MARKDOWN)
    assert [s.heading for s in sections] == [
        "Guide",
        "Guide > Install",
        "Guide > Install > From source",
        "Guide > Upgrade",
    ]
    assert "# not a heading" in sections[1].blocks[0]


def test_chunks_keep_their_heading_path_and_overlap() -> None:
    text = "# Title\n\n" + " ".join(f"sentence number {i} is here." for i in range(40))
    chunks = CHUNKER.chunks(text, markdown=True)
    assert len(chunks) > 2
    assert all(c.heading == "Title" for c in chunks)
    for before, after in itertools.pairwise(chunks):
        tail = ENCODING.decode(ENCODING.encode_ordinary(before.text)[-4:]).strip()
        assert tail in after.text  # the next chunk repeats the previous one's last tokens


# Words shorter than a chunk window (40 - 8 overlap - 2 separator tokens); a longer "word"
# cannot fit any chunk and is necessarily cut.
words = st.text(
    alphabet=st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=24
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(words, min_size=1, max_size=60), min_size=1, max_size=8))
def test_chunks_fit_the_budget_and_lose_no_words(paragraphs: list[list[str]]) -> None:
    text = "\n\n".join(" ".join(p) for p in paragraphs)
    chunks = CHUNKER.chunks(text, markdown=False)
    assert all(len(ENCODING.encode_ordinary(c.text)) <= CHUNKER.max_tokens + 1 for c in chunks)
    joined = " ".join(c.text for c in chunks)
    for paragraph in paragraphs:
        for word in paragraph:
            assert word in joined


def test_cleaning_drops_boilerplate_and_normalizes_space() -> None:
    raw = (
        "Skip to content\r\n\r\n\r\n\r\nHello\u00a0\u00a0world\x07\n"
        "© 2024 Acme. All rights reserved."
    )
    assert clean_text(raw) == "Hello world"


def test_near_duplicates_are_close_in_simhash_and_others_are_not() -> None:
    base = " ".join(f"token{i}" for i in range(300))
    assert hamming(simhash(base), simhash(base.replace("token5 ", "other "))) <= 10
    assert hamming(simhash(base), simhash(" ".join(f"x{i}" for i in range(300)))) > 16
    deduper = Deduper()
    deduper.add("a", base)
    assert deduper.duplicate_of(base.upper()) == ("exact", "a")
    assert deduper.duplicate_of("short text") is None


def test_regex_sanitizer_masks_common_pii() -> None:
    text = (
        "Mail bob@corp.io or call (415) 555-0199; SSN 123-45-6789, "
        "IBAN DE89 3704 0044 0532 0130 00, server 10.0.0.12, card 4111-1111-1111-1111."
    )
    out = RegexSanitizer().sanitize(text)
    for secret in ("bob@corp.io", "555-0199", "123-45-6789", "DE89", "10.0.0.12", "4111"):
        assert secret not in out
    assert out.startswith("Mail [EMAIL] or call")


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    scores = rrf([[1, 2, 3], [3, 1, 4]])
    assert max(scores, key=lambda k: scores[k]) == 1
    assert scores[3] > scores[2] and scores[3] > scores[4]


def test_mmr_prefers_diverse_passages() -> None:
    query = np.array([1.0, 0.0], dtype=np.float32)
    near = np.array([0.99, 0.14], dtype=np.float32)
    twin = np.array([0.99, 0.14], dtype=np.float32)
    other = np.array([0.7, -0.71], dtype=np.float32)
    assert mmr(query, [near, twin, other], 2, lam=0.5) == [0, 2]
    assert mmr(query, [near, twin, other], 2, lam=1.0) == [0, 1]


def test_keyword_terms_and_filters() -> None:
    assert keyword_terms('What is the "refund" policy OR * NEAR?') == [
        "refund",
        "policy",
        "near",
    ]
    assert validate({"lang": ["en", "de"], "tier": 2}) == {"lang": ["en", "de"], "tier": [2]}
    for bad in ({"la'ng": "en"}, {"lang": {"nested": 1}}, {"lang": []}, {"lang": [["en"]]}):
        with pytest.raises(InvalidInputError) as info:
            validate(bad)
        assert info.value.code == "retrieval_filter_invalid"


def test_bm25_ranks_like_fts5_on_a_toy_corpus() -> None:
    """Stemmed terms, rarer terms weigh more, and a row matching nothing scores 0."""
    index = KeywordIndex.build(
        [
            "Refunds take five business days.",
            "The refund policy covers every card.",
            "Invoices are sent monthly; invoices list every item.",
            "Nothing relevant here at all.",
        ]
    )
    scores = index.scores(["refunded", "invoices"])
    assert scores is not None
    assert scores[3] == 0 and all(scores[:3] > 0)
    assert scores[2] > scores[0]  # "invoice" twice beats "refund" once
    assert index.scores(["zebra"]) is None

"""Metadata filters select candidates inside the vector and keyword queries, on every store.

The corpus is 240 records about refunds and invoices plus three records tagged
``team: rare`` about something else entirely: an unfiltered top-50 never reaches them, so a
filter applied after candidate selection would return nothing, while a filter inside it
returns all three.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from keel.core.errors import InvalidInputError
from keel.retrieval.search import SearchRequest
from keel.retrieval.service import RetrievalService

pytestmark = pytest.mark.anyio

QUERY = "how long does a refund of an invoice take"
BILLING = [
    "refund",
    "invoice",
    "payment",
    "card",
    "bank",
    "transfer",
    "days",
    "business",
    "credit",
    "debit",
    "receipt",
    "account",
    "balance",
    "charge",
    "fee",
    "statement",
    "billing",
    "customer",
    "order",
    "return",
    "purchase",
    "amount",
    "currency",
    "pending",
    "settled",
    "dispute",
    "chargeback",
    "wallet",
    "subscription",
    "renewal",
    "tax",
    "discount",
    "coupon",
]
RARE = [
    "Glaciers carve fjords over thousands of years.",
    "Volcanic islands rise from the ocean floor.",
    "Tundra mosses survive dark polar winters.",
]


@pytest.fixture
async def corpus(service: RetrievalService, tmp_path: Path) -> RetrievalService:
    rng = random.Random(7)
    lines = [
        {
            "id": f"common-{i}",
            "text": " ".join(rng.sample(BILLING, 9)).capitalize() + ".",
            "team": "billing",
            "tier": i % 3,
        }
        for i in range(240)
    ]
    lines += [{"id": f"rare-{i}", "text": t, "team": "rare", "tier": i} for i, t in enumerate(RARE)]
    lines.append(
        {"id": "rare-secret", "text": "Glacier survey budget.", "team": "rare", "groups": ["geo"]}
    )
    lines.append({"id": "untagged", "text": "Refund questions go to the billing desk."})
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    await service.ingest("kb", path)
    cache = getattr(service.index.backend, "cache", None)
    if cache is not None:  # load the keys' columns, so the tests run on the in-process path
        for key in ("team", "tier"):
            await service.search(SearchRequest("kb", QUERY, filters={key: 0}))
        cache.settle()
    return service


def _ids(hits: list[Any]) -> set[str]:
    return {h.source.rsplit("#", 1)[1] for h in hits}


@pytest.mark.parametrize("mode", ["hybrid", "vector"])
async def test_a_selective_filter_still_returns_its_top_k(
    corpus: RetrievalService, mode: Any
) -> None:
    unfiltered = await corpus.search(SearchRequest("kb", QUERY, top_k=50, mode=mode))
    assert not _ids(unfiltered.hits) & {"rare-0", "rare-1", "rare-2"}  # out of reach
    result = await corpus.search(
        SearchRequest("kb", QUERY, top_k=3, mode=mode, filters={"team": "rare"})
    )
    assert _ids(result.hits) == {"rare-0", "rare-1", "rare-2"}
    assert all(h.metadata["team"] == "rare" for h in result.hits)


async def test_keyword_candidates_are_filtered_in_the_query(corpus: RetrievalService) -> None:
    result = await corpus.search(
        SearchRequest("kb", "refund invoice", top_k=5, mode="keyword", filters={"tier": 1})
    )
    assert len(result.hits) == 5  # 80 records of tier 1 match; the top-k is full
    assert all(h.metadata["tier"] == 1 and h.metadata["team"] == "billing" for h in result.hits)
    glacier = await corpus.search(
        SearchRequest("kb", "glaciers fjords", mode="keyword", filters={"team": "billing"})
    )
    assert glacier.hits == []


async def test_lists_mean_any_of_and_null_matches_a_missing_key(corpus: RetrievalService) -> None:
    both = await corpus.search(
        SearchRequest("kb", QUERY, top_k=10, filters={"team": ["rare", "nobody"], "tier": [0, 2]})
    )
    assert _ids(both.hits) == {"rare-0", "rare-2"}
    missing = await corpus.search(SearchRequest("kb", QUERY, top_k=10, filters={"team": None}))
    assert _ids(missing.hits) == {"untagged"}


async def test_filters_never_widen_access(corpus: RetrievalService) -> None:
    outsider = await corpus.search(
        SearchRequest("kb", "glacier survey budget", top_k=10, filters={"team": "rare"})
    )
    assert "rare-secret" not in _ids(outsider.hits)
    member = await corpus.search(
        SearchRequest("kb", "glacier survey budget", groups=("geo",), filters={"team": "rare"})
    )
    assert "rare-secret" in _ids(member.hits)


async def test_a_malformed_filter_is_a_clear_error(corpus: RetrievalService) -> None:
    with pytest.raises(InvalidInputError) as info:
        await corpus.search(SearchRequest("kb", QUERY, filters={"team": {"$ne": "rare"}}))
    assert info.value.code == "retrieval_filter_invalid"

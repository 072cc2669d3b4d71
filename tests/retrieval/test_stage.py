"""The retrieve stage in a pipeline run: passages into the prompt, citations back to the
caller, a traced span with the collection, index version, ids and scores; rerankers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from keel.core.errors import InvalidInputError, ProviderTimeout
from keel.core.messages import GenerationParams, Message
from keel.core.spec import PipelineSpec
from keel.core.version import compute_version
from keel.pipeline.loader import spec_from_data
from keel.pipeline.runner import Runner
from keel.pipeline.steps import RunContext
from keel.retrieval.rerank import LLMReranker
from keel.retrieval.search import SearchRequest
from keel.retrieval.service import RetrievalPlugin, RetrievalService

from ..pipeline.helpers import Harness, compile_spec
from .conftest import write_corpus

pytestmark = pytest.mark.anyio


def qa_spec(**retrieval: Any) -> dict[str, Any]:
    return {
        "name": "kb-qa",
        "input": {"schema": {"type": "object", "required": ["question"]}},
        "prompt": {
            "user": "{% for p in passages %}[{{ p.n }}] {{ p.text }}\n{% endfor %}Q: {{ question }}"
        },
        "model": {"id": "testing:echo"},
        "retrieval": {"collection": "kb", "top_k": 2, **retrieval},
    }


@pytest.fixture
async def kb(service: RetrievalService, tmp_path: Path) -> RetrievalService:
    await service.ingest("kb", write_corpus(tmp_path))
    return service


def runner_for(harness: Harness, service: RetrievalService) -> Runner:
    return Runner(
        harness.registry,
        harness.tracer_provider.get_tracer("test"),
        default_model="testing:echo",
        plugins=[RetrievalPlugin(service)],
    )


async def test_passages_reach_the_prompt_and_citations_the_caller(kb: RetrievalService) -> None:
    harness = Harness()
    result = await runner_for(harness, kb).run(
        compile_spec(qa_spec()), {"question": "How long do refunds take?"}
    )
    assert "five business days" in result.text  # echo repeats the rendered prompt
    assert result.text.startswith("[1] ")
    assert len(result.citations) == 2
    assert result.citations[0]["source"].endswith("billing.md")
    assert result.retrieval == {"collection": "kb", "version": 1}
    body = result.to_dict()
    assert body["citations"][0]["chunk_id"] == result.citations[0]["chunk_id"]

    span = harness.by_layer()["retrieval"]
    assert span.name == "retrieve"
    attributes = dict(span.attributes or {})
    assert attributes["keel.retrieval.collection"] == "kb"
    assert attributes["keel.retrieval.index_version"] == 1
    assert list(attributes["keel.retrieval.chunk_ids"]) == [c["chunk_id"] for c in result.citations]
    assert len(attributes["keel.retrieval.scores"]) == 2


async def test_pipelines_without_retrieval_are_unchanged() -> None:
    plain = qa_spec()
    del plain["retrieval"]
    plain["prompt"] = {"user": "{{ question }}"}
    result = await Harness().runner.run(compile_spec(plain), {"question": "hi"})
    assert "citations" not in result.to_dict()
    # versions hash only non-default fields: adding the section to the format moved nothing
    spec: PipelineSpec = spec_from_data(plain)
    assert "retrieval" not in spec.hashable()
    assert compute_version(spec) == compute_version(spec_from_data(plain))
    assert compute_version(spec_from_data(qa_spec())) != compute_version(
        spec_from_data(qa_spec(top_k=3))
    )


async def test_a_missing_query_is_an_input_error(kb: RetrievalService) -> None:
    with pytest.raises(InvalidInputError) as caught:
        await runner_for(Harness(), kb).run(compile_spec(qa_spec()), {"question": "  "})
    assert caught.value.code == "retrieval_query_missing"


async def test_metadata_filters_narrow_results(kb: RetrievalService) -> None:
    result = await runner_for(Harness(), kb).run(
        compile_spec(qa_spec(filters={"type": "txt"}, top_k=5)), {"question": "support hours"}
    )
    assert result.citations and all(c["source"].endswith(".txt") for c in result.citations)


async def test_llm_reranker_reorders_and_survives_a_faulty_model(kb: RetrievalService) -> None:
    harness = Harness()
    calls: list[str] = []

    def judge(messages: Sequence[Message], _params: GenerationParams) -> str:
        calls.append(messages[-1].content)
        return "3, 1"

    harness.provider.function("judge", judge)
    reranker = LLMReranker("testing:judge", harness.registry)
    request = SearchRequest("kb", "refunds and invoices", top_k=3, candidates=10)
    fused = await kb.search(request)
    reranked = await kb.search(request, reranker)
    assert calls and "Question: refunds and invoices" in calls[0]
    assert reranked.hits[0].chunk_id == fused.hits[2].chunk_id
    assert reranked.hits[1].chunk_id == fused.hits[0].chunk_id

    def broken(_messages: Sequence[Message], _params: GenerationParams) -> str:
        raise ProviderTimeout("judge timed out")

    harness.provider.function("broken", broken)
    faulty = LLMReranker("testing:broken", harness.registry)
    kept = await kb.search(request, faulty)
    assert [h.chunk_id for h in kept.hits] == [h.chunk_id for h in fused.hits]
    assert faulty.last_error == "provider_timeout"


async def test_caller_groups_flow_from_the_run_context(
    kb: RetrievalService, tmp_path: Path
) -> None:
    restricted = tmp_path / "vault"
    restricted.mkdir()
    (restricted / "plan.md").write_text("# Plan\n\nThe merger with Initech closes in March.")
    await kb.ingest("kb", restricted, ("board",))
    runner = runner_for(Harness(), kb)
    compiled = compile_spec(qa_spec(top_k=5))
    outsider = await runner.run(compiled, {"question": "merger Initech"}, RunContext())
    insider = await runner.run(
        compiled, {"question": "merger Initech"}, RunContext(groups=("board",))
    )
    assert all("plan.md" not in c["source"] for c in outsider.citations)
    assert insider.citations[0]["source"].endswith("plan.md")

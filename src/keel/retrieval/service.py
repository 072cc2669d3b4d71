"""The retrieval feature as the runtime sees it: one index, embedders, and a StagePlugin
that adds a ``retrieve`` stage to pipeline versions whose spec has a ``retrieval`` section.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from keel.core.errors import InvalidInputError
from keel.core.spec import RetrievalSpec
from keel.pipeline.compiled import CompiledPipeline
from keel.pipeline.steps import RunHooks, RunState
from keel.retrieval.chunking import Chunker
from keel.retrieval.embedders import EmbedderRegistry
from keel.retrieval.index import RetrievalIndex
from keel.retrieval.ingest import Ingestor
from keel.retrieval.lineage import record_citations
from keel.retrieval.pgvector_backend import HnswParams
from keel.retrieval.rerank import build_reranker
from keel.retrieval.sanitize import RegexSanitizer, Sanitizer
from keel.retrieval.search import Reranker, Searcher, SearchRequest, SearchResult

if TYPE_CHECKING:
    from keel.providers.registry import ProviderRegistry

COLLECTION = "keel.retrieval.collection"
INDEX_VERSION = "keel.retrieval.index_version"
CHUNK_IDS = "keel.retrieval.chunk_ids"
DOCUMENT_IDS = "keel.retrieval.document_ids"
SCORES = "keel.retrieval.scores"
RERANKER = "keel.retrieval.reranker"


@dataclass(frozen=True, slots=True)
class RetrievalConfig:
    database_url: str
    embedder: str = "wordllama"
    chunk_tokens: int = 256
    chunk_overlap: int = 32
    sanitize_pii: bool = False
    vector_cache: bool = True
    ingest_lock_timeout: float = 600.0
    cross_encoder_dir: Path | None = None
    hnsw: HnswParams = field(default_factory=HnswParams)


class RetrievalService:
    """Owns the retrieval index (opened on first use) and the embedders built from plugins."""

    def __init__(
        self,
        config: RetrievalConfig,
        registry: ProviderRegistry | None = None,
        pii_sanitizer: Sanitizer | None = None,
    ) -> None:
        self.config = config
        self._registry = registry
        # The guardrails' PII scanner when the runtime has guardrails; regexes otherwise.
        self.pii_sanitizer: Sanitizer = pii_sanitizer or RegexSanitizer()
        self._index: RetrievalIndex | None = None
        self._embedder_of: dict[str, str] = {}  # collection name -> embedder id
        self.embedders = EmbedderRegistry.from_entry_points(registry)

    @property
    def index(self) -> RetrievalIndex:
        if self._index is None:
            self._index = RetrievalIndex(
                self.config.database_url,
                vector_cache=self.config.vector_cache,
                lock_timeout=self.config.ingest_lock_timeout,
                hnsw=self.config.hnsw,
            )
        return self._index

    def ingestor(
        self, embedder: str | None = None, sanitizer: Sanitizer | None = None, *, warm: bool = True
    ) -> Ingestor:
        """``warm``: prepare the new index version for queries before the ingest returns
        (pointless in a process that exits right after, like the CLI's)."""
        if sanitizer is None and self.config.sanitize_pii:
            sanitizer = self.pii_sanitizer
        return Ingestor(
            self.index,
            self.embedders.get(embedder or self.config.embedder),
            Chunker(self.config.chunk_tokens, self.config.chunk_overlap),
            sanitizer,
            warm=warm,
        )

    async def ingest(
        self,
        collection: str,
        path: Path | list[Path],
        groups: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> Any:
        embedder = kwargs.pop("embedder", None)
        sanitizer = kwargs.pop("sanitizer", None)
        warm = kwargs.pop("warm", True)
        return await self.ingestor(embedder, sanitizer, warm=warm).ingest_path(
            collection, path, groups, **kwargs
        )

    async def search(
        self, request: SearchRequest, reranker: Reranker | None = None
    ) -> SearchResult:
        embedder = self._embedder_of.get(request.collection)
        if embedder is None:  # a collection's embedder never changes once it exists
            found = await asyncio.to_thread(self.index.collection, request.collection)
            embedder = self._embedder_of[request.collection] = found.embedder
        searcher = Searcher(self.index, self.embedders.get(embedder))
        return await searcher.search(request, reranker)

    def reranker(self, spec: str) -> Reranker | None:
        return build_reranker(spec, self._registry, self.config.cross_encoder_dir)

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None


class RetrievalStage:
    """Searches the pipeline's collection as the caller (its groups) and fills the prompt."""

    name = "retrieve"
    layer = "retrieval"

    def __init__(self, service: RetrievalService, spec: RetrievalSpec) -> None:
        self._service = service
        self._spec = spec
        self._reranker = service.reranker(spec.reranker)

    async def __call__(self, state: RunState) -> None:
        spec = self._spec
        query = state.variables.get(spec.query)
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError(
                f"retrieval needs a non-empty text in the template variable {spec.query!r}",
                code="retrieval_query_missing",
            )
        request = SearchRequest(
            spec.collection,
            query,
            groups=tuple(state.context.groups),
            top_k=spec.top_k,
            candidates=spec.candidates,
            mode=spec.mode,
            filters=spec.filters,
            mmr_lambda=spec.mmr_lambda,
        )
        result = await self._service.search(request, self._reranker)
        citations = [hit.citation(n) for n, hit in enumerate(result.hits, 1)]
        state.variables[spec.variable] = citations
        state.attributes["citations"] = [
            {k: v for k, v in c.items() if k != "text"} for c in citations
        ]
        state.attributes["retrieval"] = {"collection": spec.collection, "version": result.version}
        trace_id = self._record(state, result)
        await asyncio.to_thread(
            record_citations,
            self._service.index,
            trace_id,
            spec.collection,
            result.version,
            result.hits,
        )

    def _record(self, state: RunState, result: SearchResult) -> str:
        """Trace the retrieved ids and scores on the stage's span; returns the trace id."""
        span = trace.get_current_span(state.parent)
        span.set_attribute(COLLECTION, result.collection)
        span.set_attribute(INDEX_VERSION, result.version)
        span.set_attribute(CHUNK_IDS, [h.chunk_id for h in result.hits])
        span.set_attribute(DOCUMENT_IDS, [h.document_id for h in result.hits])
        span.set_attribute(SCORES, [round(h.score, 6) for h in result.hits])
        span.set_attribute(RERANKER, self._spec.reranker)
        if state.spans is not None:
            state.spans.payload(span, "keel.output", state.attributes["citations"])
        return format(span.get_span_context().trace_id, "032x")


class RetrievalPlugin:
    """Adds the retrieve stage (before prompt rendering) to versions that ask for it."""

    def __init__(self, service: RetrievalService) -> None:
        self._service = service

    def hooks_for(self, compiled: CompiledPipeline) -> RunHooks:
        spec = compiled.spec.retrieval
        if spec is None:
            return RunHooks()
        return RunHooks(before_render=(RetrievalStage(self._service, spec),))

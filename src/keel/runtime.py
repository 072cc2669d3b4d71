"""The composition root: builds the store, providers, tracing, catalog and runner from settings.

Both the server and the CLI hold one ``Runtime``; nothing here is module-level state.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import TracerProvider

from keel.catalog import PipelineCatalog
from keel.deploy.mirrors import Mirror, build_mirror
from keel.deploy.router import DeploymentRouter
from keel.feedback.alerting import ReviewAccuracyCondition
from keel.feedback.sampling import TrafficSampler
from keel.feedback.service import FeedbackService
from keel.gateway.resilience import ModelCaller, ResilientModels
from keel.guardrails.plugin import GuardrailPlugin
from keel.guardrails.sanitizer import PiiSanitizer
from keel.monitoring import Monitoring
from keel.pipeline.runner import Runner
from keel.pipeline.steps import StagePlugin, to_json
from keel.providers.registry import ProviderRegistry
from keel.retrieval.pgvector_backend import HnswParams
from keel.retrieval.service import RetrievalConfig, RetrievalPlugin, RetrievalService
from keel.review_queue import ReviewQueue
from keel.settings import KeelSettings
from keel.store import Store
from keel.store.engine import SQLiteTuning
from keel.telemetry.setup import build_tracer_provider

if TYPE_CHECKING:
    from keel.feedback.online import OnlineScorer
    from keel.pipeline.runner import RunResult


def provider_options(settings: KeelSettings) -> dict[str, dict[str, Any]]:
    """Plain option mappings for the built-in providers, secrets unwrapped."""
    providers = settings.providers
    options: dict[str, dict[str, Any]] = {}
    for name in ("openai", "anthropic"):
        section = getattr(providers, name).model_dump()
        options[name] = _unwrap(section) | {"allow_remote": providers.allow_remote}
    options["local"] = providers.local.model_dump()
    options["testing"] = {}
    return options


def _unwrap(section: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v.get_secret_value() if hasattr(v, "get_secret_value") else v)
        for k, v in section.items()
    }


def open_store(settings: KeelSettings) -> Store:
    """The store at the configured URL, a SQLite one bounded by ``settings.sqlite``."""
    tuning = SQLiteTuning(**settings.sqlite.model_dump())
    return Store.open(settings.resolved_database_url, sqlite=tuning)


def build_registry(settings: KeelSettings) -> ProviderRegistry:
    registry = ProviderRegistry.from_entry_points(provider_options(settings))
    for name, endpoint in settings.providers.endpoints.items():
        registry.add_endpoint(
            name,
            "openai",
            _unwrap(endpoint.model_dump()) | {"allow_remote": settings.providers.allow_remote},
        )
    return registry


def build_retrieval(settings: KeelSettings, registry: ProviderRegistry) -> RetrievalService:
    r = settings.retrieval
    config = RetrievalConfig(
        settings.resolved_retrieval_url,
        r.embedder,
        r.chunk_tokens,
        r.chunk_overlap,
        r.sanitize_pii,
        r.vector_cache,
        r.ingest_lock_timeout,
        r.cross_encoder_dir,
        HnswParams(r.hnsw_m, r.hnsw_ef_construction, r.hnsw_ef_search, r.hnsw_build_memory_mb),
    )
    return RetrievalService(config, registry, pii_sanitizer=PiiSanitizer())


class Runtime:
    """Everything a Keel process needs, built once and closed once."""

    def __init__(
        self,
        settings: KeelSettings,
        *,
        store: Store | None = None,
        registry: ProviderRegistry | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or open_store(settings)
        self.registry = registry or build_registry(settings)
        self.tracer_provider = tracer_provider or build_tracer_provider(
            settings.telemetry, self.store
        )
        self.reviews = ReviewQueue(
            self.store,
            webhook_timeout_s=settings.guardrails.webhook_timeout_s,
            allow_private_webhooks=settings.guardrails.webhook_allow_private,
        )
        self.guardrails = GuardrailPlugin(
            hold=self.reviews.hold,
            allow_private_webhooks=settings.guardrails.webhook_allow_private,
        )
        self.catalog = PipelineCatalog(
            self.store,
            label_ttl=settings.server.label_cache_seconds,
            checks=[self.guardrails.check],
        )
        # Features that add stages per pipeline version (guardrails, retrieval, review)
        # append their StagePlugin here.
        plugins: list[StagePlugin] = [self.guardrails]
        self.retrieval = build_retrieval(settings, self.registry)
        plugins.append(RetrievalPlugin(self.retrieval))
        # Pipeline model calls share the gateway's retries, breakers and concurrency bounds.
        self.model_caller = ModelCaller(settings.gateway)
        # SLOs, drift monitors and the alert engine; features add conditions to its engine.
        self.monitoring = Monitoring(self.store, settings.monitoring)
        self.runner = Runner(
            ResilientModels(self.registry, self.model_caller),
            self.tracer_provider.get_tracer("keel"),
            default_model=settings.providers.default_model,
            capture_content=settings.telemetry.capture_content,
            plugins=plugins,
        )
        self.feedback = FeedbackService(self.store, settings.feedback)
        self.monitoring.engine.add(ReviewAccuracyCondition(self.store, settings.feedback))
        self.sampler = TrafficSampler(
            self.store, settings.feedback, self.online_scorer, input_policy=self.sampled_input
        )
        # Deployments: this process's routing table (kept current by the server's watcher)
        # and the shadow mirror (its workers run inside the server).
        self.router = DeploymentRouter(self.catalog)
        self.shadow: Mirror = build_mirror(self)

    def online_scorer(self) -> OnlineScorer:
        """The online evaluators configured in ``feedback.online_evals``, built once."""
        from keel.evals.evaluators.base import EvalContext
        from keel.evals.registry import EvaluatorRegistry
        from keel.feedback.online import OnlineScorer

        configs = self.settings.feedback.online_evals
        if not configs:
            return OnlineScorer([])
        registry = EvaluatorRegistry.from_entry_points()
        context = EvalContext(self.registry, self.settings.evals.judge_model)
        return OnlineScorer(configs, lambda spec: registry.build(spec, context))

    def sampled_input(self, result: RunResult, data: Any) -> Any:
        """A sampled run's input as its trace keeps it: the pipeline's logging policy applied,
        nothing when content capture is off."""
        if not self.settings.telemetry.capture_content:
            return None
        compiled = self.catalog.compiled(result.pipeline, result.version)
        payload_filter = self.runner.hooks_for(compiled).payload_filter
        if payload_filter is None:
            return data
        kept = payload_filter("pipeline", "input", to_json(data))
        if kept is None:
            return None
        try:
            return json.loads(kept)
        except ValueError:
            return kept

    def evaluator(self, spec: str) -> Any:
        """One evaluator of ``keel eval`` by its spec (shadowed pairs are scored with it)."""
        from keel.evals.service import build_evaluators  # deferred: evaluators import a lot

        return build_evaluators(self, [spec])[0]

    def flush(self) -> None:
        self.tracer_provider.force_flush()

    async def aclose(self) -> None:
        await self.registry.aclose()
        self.close()

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.store.close()
        self.retrieval.close()

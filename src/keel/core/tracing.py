"""Span and trace records, and the attribute names Keel writes on spans.

Attribute names follow the OpenTelemetry GenAI semantic conventions (``gen_ai.*``) where one
exists; Keel's own carry the ``keel.`` prefix. The exporter turns SDK spans into the plain
records below, which is what the store persists and what the CLI and API show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import orjson

# Keel's own attributes
ROOT = "keel.root"  # bool: the span that stands for the whole run
LAYER = "keel.layer"  # preprocess | prompt | model | postprocess | guardrail | retrieval | ...
INPUT = "keel.input"  # JSON text of what the layer received
OUTPUT = "keel.output"  # JSON text of what the layer produced
CORRELATION_ID = "keel.correlation_id"
PIPELINE = "keel.pipeline.name"
PIPELINE_VERSION = "keel.pipeline.version"
PIPELINE_LABEL = "keel.pipeline.label"
CALLER = "keel.caller"  # identity of the API key or CLI user
COST_USD = "keel.cost_usd"  # decimal as text, exact
ERROR_CODE = "keel.error.code"
DECISION = "keel.decision"
PROMPT_TOKENS_ESTIMATE = "keel.prompt_tokens_estimate"
ATTEMPTS = "keel.model.attempts"
# ms from the run's start to the model's first token; set when the run streamed its model
TTFT_MS = "keel.ttft_ms"

# OpenTelemetry GenAI semantic conventions
GEN_AI_OPERATION = "gen_ai.operation.name"
GEN_AI_PROVIDER = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_SEED = "gen_ai.request.seed"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
# Not (yet) in the conventions: the OpenAI-style fingerprint of the serving configuration.
GEN_AI_RESPONSE_SYSTEM_FINGERPRINT = "gen_ai.openai.response.system_fingerprint"

Status = Literal["ok", "error"]

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def is_trace_id(value: str) -> bool:
    return bool(_TRACE_ID.match(value)) and value != "0" * 32


def payload_value(value: str | None) -> Any:
    """A span's stored input or output as the value it encodes; text that is not JSON stays
    text (a logging policy may have replaced it)."""
    if value is None:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


@dataclass(slots=True)
class SpanRecord:
    """One finished span, as stored."""

    trace_id: str  # 32 lowercase hex
    span_id: str  # 16 lowercase hex
    parent_span_id: str | None
    name: str
    start_ns: int  # unix epoch nanoseconds
    end_ns: int
    status: Status = "ok"
    status_message: str | None = None
    layer: str | None = None
    input: str | None = None  # JSON text
    output: str | None = None  # JSON text
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    model: str | None = None  # requested ``provider:model``
    model_version: str | None = None  # what the provider reported it ran
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


@dataclass(slots=True)
class TraceRecord:
    """Summary of one run, written from its root span."""

    trace_id: str
    correlation_id: str
    name: str
    start_ns: int
    end_ns: int
    status: Status = "ok"
    error_code: str | None = None
    pipeline: str | None = None
    pipeline_version: str | None = None
    label: str | None = None
    caller: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    decision: str | None = None

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

"""Request and response models of the HTTP API, for validation and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class InvokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: Any = Field(description="The business object; validated against the input schema.")


class UsageOut(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class DecisionOut(BaseModel):
    decision: str
    label: str | None
    confidence: float | None
    reason: str = Field(description="confident | below_threshold | unknown_label | unparseable")


class InvokeResponse(BaseModel):
    trace_id: str
    request_id: str
    pipeline: str
    version: str
    label: str | None
    output: Any
    decision: DecisionOut | None
    text: str = Field(description="The model's raw answer.")
    usage: UsageOut
    cost_usd: str = Field(description="Exact decimal amount in US dollars.")
    model: str = Field(description="provider:model that answered (after fallbacks).")
    model_version: str | None = Field(description="Model version reported by the provider.")
    latency_ms: float
    citations: list[dict[str, Any]] | None = Field(
        None, description="Passages retrieval put into the prompt (pipelines with retrieval)."
    )
    retrieval: dict[str, Any] | None = Field(
        None, description="Collection and index version the passages came from."
    )


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code.")
    message: str = Field(description="What went wrong and what to do about it.")
    request_id: str | None
    details: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 404, 409, 422, 429, 502, 503, 504)
}

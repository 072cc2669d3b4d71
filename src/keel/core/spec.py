"""The pipeline spec: everything that shapes an answer, as one validated, hashable document.

On disk a pipeline is a directory holding ``pipeline.yaml`` and its template files; the
loader inlines the templates, so the stored spec is self-contained and its content hash is
the pipeline version. Fields that do not shape the answer (``description``, ``metadata``)
are left out of the hash.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from keel.core.decision import extract_label
from keel.core.guardrail_policy import GuardrailPolicy
from keel.core.logging_policy import LoggingPolicy

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    """Domain preprocessing: validate the business object, then map it to template variables."""

    json_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object"},
        alias="schema",
        description="JSON Schema (draft 2020-12) the input must satisfy.",
    )
    mapping: dict[str, str] = Field(
        default_factory=dict,
        description="Template variable -> dotted path into the input. Empty: every top-level "
        "field becomes a variable of the same name.",
    )
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("mapping")
    @classmethod
    def _variables_are_identifiers(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _VARIABLE.match(name):
                raise ValueError(f"mapping key {name!r} is not a valid template variable name")
        return value


class Example(_Strict):
    """A few-shot example: an input rendered with the user template, and the ideal answer."""

    input: dict[str, Any]
    output: str


class PromptSpec(_Strict):
    system: str | None = Field(None, description="System message template (Jinja2, sandboxed).")
    user: str = Field(description="User message template (Jinja2, sandboxed).")
    examples: list[Example] = Field(default_factory=list)


class ModelParams(_Strict):
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    stop: list[str] = Field(default_factory=list, max_length=4)


class ModelSpec(_Strict):
    id: str | None = Field(None, description="provider:model; empty uses the default model.")
    params: ModelParams = Field(default_factory=ModelParams)
    fallbacks: list[str] = Field(default_factory=list, description="Tried in order on failure.")
    timeout_s: float | None = Field(None, gt=0, description="Total seconds per model attempt.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Provider-specific fields passed through unchanged."
    )

    @field_validator("id", "fallbacks")
    @classmethod
    def _ids_have_provider(cls, value: Any) -> Any:
        for item in [value] if isinstance(value, str) else value or []:
            if ":" not in item:
                raise ValueError(f"model id {item!r} must look like 'provider:model'")
        return value


class TextOutput(_Strict):
    type: Literal["text"] = "text"
    strip: bool = True


class JsonOutput(_Strict):
    type: Literal["json"] = "json"
    json_schema: dict[str, Any] | None = Field(None, alias="schema")
    constrain: bool = Field(True, description="Ask the model for schema-constrained output.")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LabelRule(_Strict):
    threshold: float = Field(0.0, ge=0, le=1, description="Minimum confidence to act on it.")
    decision: str | None = Field(None, description="Decision the label maps to; default: itself.")


class LabelOutput(_Strict):
    """Classification: the model picks a label with a confidence; thresholds decide."""

    type: Literal["label"] = "label"
    labels: dict[str, LabelRule] = Field(min_length=2)
    default_decision: str = Field(
        description="Decision when the label is unknown or its confidence is under threshold."
    )
    constrain: bool = Field(True, description="Ask the model for {label, confidence} JSON.")

    @field_validator("labels", mode="before")
    @classmethod
    def _accept_label_list(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {str(name): {} for name in value}
        return {k: ({} if v is None else v) for k, v in value.items()} if value else value


OutputSpec = Annotated[TextOutput | JsonOutput | LabelOutput, Field(discriminator="type")]


class RetrievalSpec(_Strict):
    """Retrieve passages from a collection before the prompt is rendered."""

    collection: str = Field(pattern=NAME_PATTERN, description="Collection to search.")
    query: str = Field("question", description="Template variable holding the search query.")
    top_k: int = Field(5, ge=1, le=100, description="Passages put into the prompt.")
    candidates: int = Field(50, ge=1, le=1000, description="Candidates per ranking before fusion.")
    mode: Literal["hybrid", "vector", "keyword"] = "hybrid"
    filters: dict[str, Any] = Field(
        default_factory=dict,
        description="Equality filters on document metadata; a list means any of its values.",
    )
    mmr_lambda: float | None = Field(
        None, ge=0, le=1, description="MMR diversity trade-off; empty turns MMR off."
    )
    reranker: str = Field("none", description="none, llm:provider:model or cross-encoder:MODEL.")
    variable: str = Field("passages", description="Template variable the passages go into.")

    @field_validator("query", "variable")
    @classmethod
    def _is_identifier(cls, value: str) -> str:
        if not _VARIABLE.match(value):
            raise ValueError(f"{value!r} is not a valid template variable name")
        return value


class PipelineSpec(_Strict):
    """A complete, self-contained pipeline definition (templates inlined)."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict, description="Not part of the version.")
    input: InputSpec = Field(default_factory=InputSpec)
    prompt: PromptSpec
    model: ModelSpec = Field(default_factory=ModelSpec)
    output: OutputSpec = Field(default_factory=TextOutput)
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="Business parameters, visible to templates."
    )
    guardrails: GuardrailPolicy = Field(
        default_factory=GuardrailPolicy, description="Input/output scanners and their actions."
    )
    logging: LoggingPolicy = Field(
        default_factory=LoggingPolicy, description="Per-layer span storage modes and retention."
    )
    retrieval: RetrievalSpec | None = Field(None, description="Retrieve passages before render.")

    @model_validator(mode="after")
    def _examples_name_labels(self) -> PipelineSpec:
        if isinstance(self.output, LabelOutput):
            allowed = list(self.output.labels)
            for example in self.prompt.examples:
                label, _, _ = extract_label(example.output, allowed)
                if label not in self.output.labels:
                    raise ValueError(
                        f"few-shot example output {example.output!r} names none of the labels "
                        f"{sorted(allowed)}"
                    )
        return self

    def hashable(self) -> dict[str, Any]:
        """The part of the spec that shapes answers, in canonical JSON-ready form.

        Fields left at their defaults are omitted, so adding a new optional section to the
        spec format does not change the version of specs that do not use it.
        """
        return self.model_dump(
            mode="json", by_alias=True, exclude={"description", "metadata"}, exclude_defaults=True
        )

"""Per-layer logging policy: how each span payload is stored, and for how long.

Modes per field: ``raw`` (as is), ``redacted`` (PII and secrets replaced by ``[ENTITY]``),
``hashed`` (``sha256:<hex>`` of the JSON text, to match equal values without keeping them)
and ``dropped`` (not recorded). The policy is applied before a span is exported, so no
exporter (store, OTLP, console) ever sees what it removes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FieldMode = Literal["raw", "redacted", "hashed", "dropped"]
LAYERS = ("pipeline", "guardrail", "preprocess", "retrieval", "prompt", "model", "postprocess")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LayerLogging(_Strict):
    input: FieldMode | None = Field(
        None, description="Mode for the layer's input; default: the default."
    )
    output: FieldMode | None = Field(None, description="Mode for the layer's output.")
    retention_days: float | None = Field(
        None, gt=0, description="Days the payloads are kept; then they are purged."
    )


class LoggingPolicy(_Strict):
    default: FieldMode = Field("raw", description="Mode for fields no layer rule names.")
    layers: dict[str, LayerLogging] = Field(
        default_factory=dict, description="Per layer (pipeline, model, prompt, ...)."
    )
    retention_days: float | None = Field(
        None, gt=0, description="Days whole traces of this pipeline are kept; none: forever."
    )

    def mode(self, layer: str, field: str) -> FieldMode:
        rule = self.layers.get(layer) or self.layers.get(layer.split(".")[0])
        found = getattr(rule, field, None) if rule is not None else None
        return found or self.default

    @property
    def is_raw(self) -> bool:
        return self.default == "raw" and all(
            rule.input in (None, "raw") and rule.output in (None, "raw")
            for rule in self.layers.values()
        )

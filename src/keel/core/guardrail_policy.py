"""The guardrail policy of a pipeline: which scanners run on input and output, and what then.

Part of the pipeline spec (and so of the version hash). This module only checks the shape of
the policy; ``keel.guardrails`` checks scanner names and options when a version is pushed.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Action = Literal["block", "redact", "anonymize", "flag", "review"]
ReviewDefault = Literal["approve", "reject"]

_RULE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# Actions that rewrite text need the spans a scanner found; review only applies to answers.
_OUTPUT_ONLY: frozenset[str] = frozenset({"review"})
_INPUT_ONLY: frozenset[str] = frozenset({"anonymize"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScannerRule(_Strict):
    """One scanner with its threshold and the action taken when its score reaches it."""

    scanner: str = Field(description="Scanner name, e.g. pii, secrets, prompt_injection.")
    name: str | None = Field(None, description="Rule name used in errors; default: the scanner.")
    action: Action = Field("block", description="block | redact | anonymize | flag | review.")
    threshold: float = Field(0.5, ge=0, le=1, description="Score at or above which it fires.")
    options: dict[str, Any] = Field(default_factory=dict, description="Scanner settings.")

    @property
    def rule(self) -> str:
        return self.name or self.scanner

    @model_validator(mode="after")
    def _name_is_code_like(self) -> ScannerRule:
        if not _RULE_NAME.match(self.rule):
            raise ValueError(f"rule name {self.rule!r} must match {_RULE_NAME.pattern}")
        return self


class ReviewPolicy(_Strict):
    """How held answers are decided when no reviewer acts in time."""

    timeout_s: float = Field(3600.0, gt=0, description="Seconds before the default applies.")
    default_action: ReviewDefault = Field("reject", description="Applied when the timeout ends.")
    below_confidence: float | None = Field(
        None, ge=0, le=1, description="Also hold label decisions whose confidence is under this."
    )
    webhook: str | None = Field(None, description="URL told of each decision (POST, JSON).")


class GuardrailPolicy(_Strict):
    input: list[ScannerRule] = Field(default_factory=list, description="Run before preprocess.")
    output: list[ScannerRule] = Field(default_factory=list, description="Run after generate.")
    review: ReviewPolicy = Field(default_factory=ReviewPolicy)

    @model_validator(mode="after")
    def _actions_fit_direction(self) -> GuardrailPolicy:
        for direction, rules, banned in (
            ("input", self.input, _OUTPUT_ONLY),
            ("output", self.output, _INPUT_ONLY),
        ):
            seen: set[str] = set()
            for rule in rules:
                if rule.action in banned:
                    raise ValueError(
                        f"guardrails.{direction} rule {rule.rule!r}: action {rule.action!r} "
                        f"is not available on {direction}"
                    )
                if rule.rule in seen:
                    raise ValueError(
                        f"guardrails.{direction} has two rules named {rule.rule!r}; "
                        "give one a distinct name"
                    )
                seen.add(rule.rule)
        return self

    @property
    def holds_for_review(self) -> bool:
        return self.review.below_confidence is not None or any(
            r.action == "review" for r in self.output
        )

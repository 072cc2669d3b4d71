"""Postprocessing: from the model's text to the pipeline's output (text, JSON or a decision)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from keel.core.decision import Decision, decide
from keel.core.errors import OutputParseError
from keel.core.spec import JsonOutput, LabelOutput, TextOutput
from keel.pipeline.compiled import CompiledPipeline

_FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ParsedOutput:
    value: Any
    decision: Decision | None = None


def _parse_json(text: str) -> Any:
    candidates = [text.strip()]
    fenced = _FENCED.search(text)
    if fenced:
        candidates.append(fenced.group(1).strip())
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    raise OutputParseError(
        "the model's answer is not valid JSON; consider a lower temperature, a stricter "
        "prompt, or a model that supports schema-constrained output",
        code="output_not_json",
        excerpt=text[:200],
    )


def postprocess(compiled: CompiledPipeline, text: str) -> ParsedOutput:
    output = compiled.spec.output
    if isinstance(output, TextOutput):
        return ParsedOutput(text.strip() if output.strip else text)
    if isinstance(output, JsonOutput):
        value = _parse_json(text)
        if compiled.output_validator is not None:
            error = next(iter(compiled.output_validator.iter_errors(value)), None)
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "(root)"
                raise OutputParseError(
                    f"the model's JSON does not match output.schema at {where}: {error.message}",
                    code="output_schema_violation",
                    excerpt=text[:200],
                )
        return ParsedOutput(value)
    assert isinstance(output, LabelOutput)
    decision = decide(output, text)
    return ParsedOutput(decision.label, decision)

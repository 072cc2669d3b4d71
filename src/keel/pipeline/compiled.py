"""A pipeline version made ready to run: schema validator, templates and parser built once.

jsonschema is imported when the first version is compiled, not with this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.core.decision import label_schema
from keel.core.errors import SpecError
from keel.core.messages import GenerationParams
from keel.core.prompt import CompiledPrompt
from keel.core.spec import JsonOutput, LabelOutput, PipelineSpec
from keel.core.version import compute_version
from keel.pipeline.preprocess import InputMapper

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator


def _validator(schema: Mapping[str, Any], where: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise SpecError(f"{where} is not a valid JSON Schema: {exc.message}") from exc
    return Draft202012Validator(schema)


def _response_format(spec: PipelineSpec) -> Mapping[str, Any] | None:
    output = spec.output
    if isinstance(output, LabelOutput) and output.constrain:
        schema: Mapping[str, Any] | None = label_schema(output)
    elif isinstance(output, JsonOutput) and output.constrain:
        schema = output.json_schema
        if schema is None:
            return {"type": "json_object"}
    else:
        return None
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


@dataclass(frozen=True, slots=True)
class CompiledPipeline:
    spec: PipelineSpec
    version: str
    mapper: InputMapper
    prompt: CompiledPrompt
    params: GenerationParams
    output_validator: Draft202012Validator | None
    shared_variables: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    def build(cls, spec: PipelineSpec, version: str | None = None) -> CompiledPipeline:
        """Compile and check everything that can be checked before the first run."""
        mapper = InputMapper(_validator(spec.input.json_schema, "input.schema"), spec.input)
        output_schema = spec.output.json_schema if isinstance(spec.output, JsonOutput) else None
        output_validator = _validator(output_schema, "output.schema") if output_schema else None
        p = spec.model.params
        params = GenerationParams(
            temperature=p.temperature,
            top_p=p.top_p,
            max_tokens=p.max_tokens,
            seed=p.seed,
            stop=tuple(p.stop),
            response_format=_response_format(spec),
        )
        labels = list(spec.output.labels) if isinstance(spec.output, LabelOutput) else []
        compiled = cls(
            spec=spec,
            version=version or compute_version(spec),
            mapper=mapper,
            prompt=CompiledPrompt.compile(spec.prompt),
            params=params,
            output_validator=output_validator,
            shared_variables={"thresholds": dict(spec.thresholds), "labels": labels},
        )
        compiled.check_examples()
        return compiled

    def check_examples(self) -> None:
        """Render the prompt with each few-shot example, so template errors show at push."""
        for example in self.spec.prompt.examples:
            self.mapper.validate(example.input, what="few-shot example input")
        if self.spec.prompt.examples:
            first = self.mapper.variables(self.spec.prompt.examples[0].input)
            if self.spec.retrieval is not None:  # filled at run time by the retrieve stage
                first = {**first, self.spec.retrieval.variable: []}
            self.render(first)

    def render(self, variables: Mapping[str, Any]) -> tuple[Any, ...]:
        return self.prompt.render(variables, self.mapper.variables, self.shared_variables)

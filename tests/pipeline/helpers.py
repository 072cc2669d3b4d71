"""Building blocks for runner tests: specs, an in-memory tracer and a testing provider."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from keel.pipeline.compiled import CompiledPipeline
from keel.pipeline.loader import spec_from_data
from keel.pipeline.runner import Runner
from keel.providers.base import ProviderPlugin
from keel.providers.registry import ProviderRegistry
from keel.providers.testing import TestingProvider


def triage_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "triage",
        "input": {
            "schema": {
                "type": "object",
                "required": ["subject", "body"],
                "properties": {"subject": {"type": "string"}, "body": {"type": "string"}},
            },
            "mapping": {"title": "subject", "text": "body"},
        },
        "prompt": {
            "system": "Route to one of {{ labels | join(', ') }}.",
            "user": "{{ title }}: {{ text }}",
        },
        "model": {"id": "testing:echo", "params": {"temperature": 0, "max_tokens": 32}},
        "output": {
            "type": "label",
            "labels": {
                "billing": {"threshold": 0.6, "decision": "queue:billing"},
                "technical": {"threshold": 0.6, "decision": "queue:tech"},
            },
            "default_decision": "queue:human",
        },
    }
    spec.update(overrides)
    return spec


def compile_spec(data: dict[str, Any]) -> CompiledPipeline:
    return CompiledPipeline.build(spec_from_data(data))


class Harness:
    """A runner on a private testing provider, with every finished span kept in memory."""

    def __init__(self, default_model: str = "testing:echo", capture: bool = True) -> None:
        self.provider = TestingProvider()
        self.registry = ProviderRegistry(
            [ProviderPlugin("testing", lambda name, options: self.provider)]
        )
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.runner = Runner(
            self.registry,
            self.tracer_provider.get_tracer("test"),
            default_model=default_model,
            capture_content=capture,
        )

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def by_layer(self) -> dict[str, ReadableSpan]:
        return {str(s.attributes.get("keel.layer")): s for s in self.spans() if s.attributes}


__all__ = ["Harness", "compile_spec", "triage_spec"]

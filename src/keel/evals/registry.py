"""Evaluator plugins from the ``keel.evaluators`` entry points, built from ``NAME[:OPTIONS]``.

Built-ins are registered through the same entry points as third-party evaluators. Options
follow a colon, either as ``key=value`` pairs separated by commas or as a JSON object:
``regex:pattern=^\\d+$``, ``judge:{"model": "openai:gpt-4o-mini", "rubric": "…"}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

from keel.core.errors import ConfigError
from keel.evals.evaluators.base import EvalContext, Evaluator, EvaluatorPlugin

ENTRY_POINT_GROUP = "keel.evaluators"


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not rest.strip():
        return name, {}
    if rest.lstrip().startswith("{"):
        try:
            options = json.loads(rest)
        except json.JSONDecodeError as exc:
            msg = f"options of evaluator {name!r} are not valid JSON: {exc.msg}"
            raise ConfigError(msg, code="evaluator_options_invalid") from exc
        if not isinstance(options, dict):
            raise ConfigError(
                f"options of {name!r} must be an object", code="evaluator_options_invalid"
            )
        return name, options
    options = {}
    for pair in rest.split(","):
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            msg = f"evaluator {spec!r}: options are key=value pairs separated by commas, or JSON"
            raise ConfigError(msg, code="evaluator_options_invalid")
        options[key.strip()] = value.strip()
    return name, options


class EvaluatorRegistry:
    def __init__(self, plugins: Iterable[EvaluatorPlugin] = ()) -> None:
        self._plugins = {p.name: p for p in plugins}

    @classmethod
    def from_entry_points(cls) -> EvaluatorRegistry:
        plugins = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                plugin = ep.load()
            except ImportError as exc:
                msg = f"evaluator plugin {ep.name!r} ({ep.value}) failed to import: {exc}"
                raise ConfigError(msg, code="plugin_import_failed") from exc
            if not isinstance(plugin, EvaluatorPlugin):
                msg = f"entry point {ep.name!r} in {ENTRY_POINT_GROUP} is not an EvaluatorPlugin"
                raise ConfigError(msg, code="plugin_invalid")
            plugins.append(plugin)
        return cls(plugins)

    @property
    def names(self) -> list[str]:
        return sorted(self._plugins)

    def register(self, plugin: EvaluatorPlugin) -> None:
        self._plugins[plugin.name] = plugin

    def build(self, spec: str, context: EvalContext) -> Evaluator:
        name, options = parse_spec(spec)
        plugin = self._plugins.get(name)
        if plugin is None:
            msg = f"no evaluator named {name!r}; installed: {', '.join(self.names)}"
            raise ConfigError(msg, code="evaluator_unknown", evaluator=name)
        return plugin.factory(options, context)

"""Answer checks: exact match, contains, regex, and JSON(-schema) validity. All ``pass``."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from keel.core.errors import ConfigError
from keel.evals.evaluators.base import (
    Case,
    EvalContext,
    EvaluatorPlugin,
    Metric,
    Scored,
    check_options,
    expected_text,
    option,
)


def _flag(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


def _normalize(text: str, ignore_case: bool) -> str:
    text = " ".join(text.split())
    return text.casefold() if ignore_case else text


@dataclass(frozen=True, slots=True)
class ExactMatch:
    """1 when the answer equals the item's expected answer (or label), whitespace-normalized."""

    ignore_case: bool = False
    name: str = "exact"
    version: str = "1"
    metrics: tuple[Metric, ...] = (Metric("exact", "pass", description="answer == expected"),)

    async def evaluate(self, case: Case) -> Scored:
        expected = case.item.expected
        if expected is not None and not isinstance(expected, str):
            return Scored({"exact": float(case.output == expected)})
        reference = expected_text(case.item)
        if reference is None:
            return Scored({"exact": None})
        same = _normalize(case.answer, self.ignore_case) == _normalize(reference, self.ignore_case)
        return Scored({"exact": float(same)})


@dataclass(frozen=True, slots=True)
class Contains:
    """1 when the answer contains ``value`` (or else the expected answer)."""

    value: str | None = None
    ignore_case: bool = True
    name: str = "contains"
    version: str = "1"
    metrics: tuple[Metric, ...] = (Metric("contains", "pass"),)

    async def evaluate(self, case: Case) -> Scored:
        needle = self.value if self.value is not None else expected_text(case.item)
        if needle is None:
            return Scored({"contains": None})
        hay = case.answer
        if self.ignore_case:
            needle, hay = needle.casefold(), hay.casefold()
        return Scored({"contains": float(needle in hay)})


@dataclass(frozen=True, slots=True)
class RegexMatch:
    pattern: re.Pattern[str]
    name: str = "regex"
    version: str = "1"
    metrics: tuple[Metric, ...] = (Metric("regex", "pass"),)

    async def evaluate(self, case: Case) -> Scored:
        return Scored({"regex": float(self.pattern.search(case.answer) is not None)})


@dataclass(frozen=True, slots=True)
class JsonValid:
    """1 when the answer is JSON (and, given a schema, valid against it)."""

    validator: Draft202012Validator | None
    name: str = "json_schema"
    version: str = "1"
    metrics: tuple[Metric, ...] = (Metric("json_valid", "pass"),)

    async def evaluate(self, case: Case) -> Scored:
        value = case.output
        if isinstance(value, str) or value is None:
            try:
                value = json.loads(case.text if value is None else value)
            except json.JSONDecodeError as exc:
                return Scored({"json_valid": 0.0}, {"json_error": exc.msg})
        if self.validator is None:
            return Scored({"json_valid": 1.0})
        error = next(iter(self.validator.iter_errors(value)), None)
        if error is None:
            return Scored({"json_valid": 1.0})
        return Scored({"json_valid": 0.0}, {"json_error": error.message})


def _exact(options: Mapping[str, Any], context: EvalContext) -> ExactMatch:
    check_options(options, {"ignore_case"}, "exact")
    return ExactMatch(ignore_case=_flag(options.get("ignore_case", False)))


def _contains(options: Mapping[str, Any], context: EvalContext) -> Contains:
    check_options(options, {"value", "ignore_case"}, "contains")
    return Contains(options.get("value"), _flag(options.get("ignore_case", True)))


def _regex(options: Mapping[str, Any], context: EvalContext) -> RegexMatch:
    check_options(options, {"pattern"}, "regex")
    pattern = str(option(options, "pattern", "regex"))
    try:
        return RegexMatch(re.compile(pattern))
    except re.error as exc:
        msg = f"regex evaluator: {pattern!r} is not a valid pattern ({exc})"
        raise ConfigError(msg, code="evaluator_options_invalid") from exc


def _schema(options: Mapping[str, Any], context: EvalContext) -> JsonValid:
    check_options(options, {"schema"}, "json_schema")
    schema = options.get("schema")
    if schema is None:
        return JsonValid(None)
    if isinstance(schema, str):
        try:
            text = Path(schema[1:]).read_text() if schema.startswith("@") else schema
            schema = json.loads(text)
        except (OSError, json.JSONDecodeError) as exc:
            msg = f"json_schema evaluator: schema must be JSON or @file.json ({exc})"
            raise ConfigError(msg, code="evaluator_options_invalid") from exc
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        msg = f"json_schema evaluator: not a valid JSON Schema ({exc.message})"
        raise ConfigError(msg, code="evaluator_options_invalid") from exc
    return JsonValid(Draft202012Validator(schema))


exact = EvaluatorPlugin("exact", _exact, "Answer equals the expected answer or label.")
contains = EvaluatorPlugin("contains", _contains, "Answer contains a value or the expected answer.")
regex = EvaluatorPlugin("regex", _regex, "Answer matches a regular expression.")
json_schema = EvaluatorPlugin("json_schema", _schema, "Answer is JSON, valid against a schema.")

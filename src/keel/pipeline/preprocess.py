"""Domain preprocessing: validate the business object and map it to template variables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from keel.core.errors import InvalidInputError
from keel.core.spec import InputSpec

if TYPE_CHECKING:  # imported where validators are built (keel.pipeline.compiled)
    from jsonschema import Draft202012Validator

_MAX_ERRORS = 10


def _lookup(data: Any, path: str) -> Any:
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
        if current is None:
            return None
    return current


class InputMapper:
    """Validates pipeline input against its JSON Schema, then maps it to variables."""

    __slots__ = ("_mapping", "_validator")

    def __init__(self, validator: Draft202012Validator, spec: InputSpec) -> None:
        self._validator = validator
        self._mapping = dict(spec.mapping)

    def validate(self, data: Any, *, what: str = "input") -> None:
        errors = sorted(self._validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        if not errors:
            return
        problems = []
        for error in errors[:_MAX_ERRORS]:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            problems.append(f"{where}: {error.message}")
        raise InvalidInputError(
            f"{what} does not match the pipeline's input schema: " + "; ".join(problems),
            code="input_schema_violation",
            problems=problems,
        )

    def variables(self, data: Any) -> dict[str, Any]:
        """Template variables for a validated input; ``input`` always holds the whole object."""
        if self._mapping:
            out = {name: _lookup(data, path) for name, path in self._mapping.items()}
        elif isinstance(data, Mapping):
            out = {str(k): v for k, v in data.items() if str(k).isidentifier()}
        else:
            out = {}
        out["input"] = data
        return out

    def __call__(self, data: Any) -> dict[str, Any]:
        self.validate(data)
        return self.variables(data)

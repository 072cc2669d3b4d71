"""Reading a pipeline directory (``pipeline.yaml`` + template files) into a validated spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from keel.core.errors import SpecError
from keel.core.spec import PipelineSpec

SPEC_FILE = "pipeline.yaml"
_FILE_KEYS = {"system_file": "system", "user_file": "user"}


def _format_errors(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        out.append(f"{where}: {err['msg']}")
    return out


def spec_from_data(data: Any, *, source: str = "spec") -> PipelineSpec:
    """Validate a spec mapping (from YAML or the store) into a PipelineSpec."""
    if not isinstance(data, dict):
        raise SpecError(f"{source} must be a mapping at the top level, got {type(data).__name__}")
    try:
        return PipelineSpec.model_validate(data)
    except ValidationError as exc:
        problems = _format_errors(exc)
        raise SpecError(f"{source} is invalid: " + "; ".join(problems), problems=problems) from exc


def _read_text(directory: Path, relative: str, key: str) -> str:
    path = (directory / relative).resolve()
    if directory.resolve() not in path.parents:
        raise SpecError(f"prompt.{key} must point inside the pipeline directory: {relative!r}")
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"prompt.{key}: cannot read {relative!r}: {exc.strerror}") from exc


def _inline_templates(data: dict[str, Any], directory: Path) -> None:
    prompt = data.get("prompt")
    if not isinstance(prompt, dict):
        return
    for file_key, text_key in _FILE_KEYS.items():
        if file_key in prompt:
            if text_key in prompt:
                raise SpecError(f"prompt has both {text_key!r} and {file_key!r}; keep one")
            prompt[text_key] = _read_text(directory, str(prompt.pop(file_key)), file_key)


def load_spec_dir(directory: Path | str) -> PipelineSpec:
    """Load ``DIR/pipeline.yaml``, inlining the template files it names."""
    directory = Path(directory)
    spec_path = directory / SPEC_FILE if directory.is_dir() else directory
    if not spec_path.is_file():
        raise SpecError(
            f"no {SPEC_FILE} found at {spec_path}; a pipeline is a directory holding one",
            code="spec_not_found",
        )
    try:
        data = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"{spec_path} is not valid YAML{where}: {exc}") from exc
    if isinstance(data, dict):
        _inline_templates(data, spec_path.parent)
    return spec_from_data(data, source=str(spec_path))

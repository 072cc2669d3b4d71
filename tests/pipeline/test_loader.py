"""Loading pipeline directories: every malformed spec gets a clear, specific error."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.core.errors import InvalidInputError, SpecError, TemplateError
from keel.pipeline.compiled import CompiledPipeline
from keel.pipeline.loader import load_spec_dir

from ..conftest import EXAMPLES

GOOD = """\
name: demo
input:
  schema: {type: object, required: [q], properties: {q: {type: string}}}
prompt:
  system_file: system.j2
  user: "{{ q }}"
output: {type: text}
"""


def write(tmp_path: Path, spec: str, **files: str) -> Path:
    (tmp_path / "pipeline.yaml").write_text(spec)
    for name, content in files.items():
        (tmp_path / name.replace("_j2", ".j2")).write_text(content)
    return tmp_path


@pytest.mark.parametrize("name", ["support-triage", "summarize", "docs-qa"])
def test_shipped_examples_load_and_compile(name: str) -> None:
    compiled = CompiledPipeline.build(load_spec_dir(EXAMPLES / name))
    assert compiled.name == name
    assert len(compiled.version) == 12


def test_template_files_are_inlined(tmp_path: Path) -> None:
    spec = load_spec_dir(write(tmp_path, GOOD, system_j2="Be brief."))
    assert spec.prompt.system == "Be brief."


@pytest.mark.parametrize(
    ("spec", "files", "fragment"),
    [
        ("name: demo\nprompt: [unclosed", {}, "not valid YAML at line"),
        ("- a list\n", {}, "mapping at the top level"),
        (GOOD, {}, "cannot read 'system.j2'"),
        (GOOD.replace("system.j2", "../outside.j2"), {}, "inside the pipeline directory"),
        (GOOD.replace("output:", "surprise: 1\noutput:"), {"system_j2": "x"}, "surprise"),
        (GOOD.replace("name: demo", "name: Not Valid!"), {"system_j2": "x"}, "name"),
        (
            GOOD.replace("{type: text}", "{type: label, labels: [a], default_decision: h}"),
            {"system_j2": "x"},
            "output.label.labels",
        ),
        (GOOD + "model: {id: gpt-4o}\n", {"system_j2": "x"}, "provider:model"),
    ],
)
def test_invalid_specs_raise_spec_errors(
    tmp_path: Path, spec: str, files: dict[str, str], fragment: str
) -> None:
    with pytest.raises(SpecError) as info:
        load_spec_dir(write(tmp_path, spec, **files))
    assert fragment in info.value.message


def test_missing_directory_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec_dir(tmp_path / "nowhere")
    assert info.value.code == "spec_not_found"


def test_invalid_input_schema_is_caught_at_compile(tmp_path: Path) -> None:
    spec = load_spec_dir(write(tmp_path, GOOD.replace("type: object", "type: 12"), system_j2="x"))
    with pytest.raises(SpecError, match=r"input\.schema is not a valid JSON Schema"):
        CompiledPipeline.build(spec)


def test_template_syntax_error_is_caught_at_compile(tmp_path: Path) -> None:
    spec = load_spec_dir(write(tmp_path, GOOD, system_j2="{% for %}"))
    with pytest.raises(TemplateError) as info:
        CompiledPipeline.build(spec)
    assert info.value.code == "template_error"


def test_few_shot_examples_must_fit_the_input_schema(tmp_path: Path) -> None:
    spec_text = GOOD.replace(
        '  user: "{{ q }}"', '  user: "{{ q }}"\n  examples: [{input: {x: 1}, output: "y"}]'
    )
    spec = load_spec_dir(write(tmp_path, spec_text, system_j2="x"))
    with pytest.raises(InvalidInputError) as info:
        CompiledPipeline.build(spec)
    assert "few-shot example input" in info.value.message

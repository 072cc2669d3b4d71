"""Prompt templates: sandboxed, strict about undefined names, errors that point at the line."""

from __future__ import annotations

import pytest

from keel.core.errors import TemplateError
from keel.core.prompt import CompiledPrompt
from keel.core.spec import PromptSpec


def compile_prompt(**fields: object) -> CompiledPrompt:
    return CompiledPrompt.compile(PromptSpec.model_validate(fields))


def test_renders_system_examples_and_user_in_order() -> None:
    prompt = compile_prompt(
        system="Labels: {{ labels | join('/') }}",
        user="Q: {{ q }}",
        examples=[{"input": {"q": "2+2"}, "output": "4"}],
    )
    messages = prompt.render({"q": "3+3"}, shared={"labels": ["a", "b"]})
    assert [(m.role, m.content) for m in messages] == [
        ("system", "Labels: a/b"),
        ("user", "Q: 2+2"),
        ("assistant", "4"),
        ("user", "Q: 3+3"),
    ]


def test_syntax_error_names_template_and_line() -> None:
    with pytest.raises(TemplateError) as info:
        compile_prompt(user="line one\n{% if x %}never closed")
    assert info.value.code == "template_error"
    assert "user template" in info.value.message
    assert info.value.details["line"] == 2


def test_undefined_variable_is_an_error_not_an_empty_string() -> None:
    prompt = compile_prompt(user="Hello {{ name }}")
    with pytest.raises(TemplateError) as info:
        prompt.render({})
    assert info.value.code == "template_render_failed"
    assert "name" in info.value.message


def test_sandbox_blocks_attribute_escapes() -> None:
    prompt = compile_prompt(user="{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(TemplateError) as info:
        prompt.render({})
    assert info.value.code in {"template_unsafe", "template_render_failed"}


def test_sandbox_is_immutable() -> None:
    prompt = compile_prompt(user="{{ items.append(4) }}{{ items }}")
    with pytest.raises(TemplateError):
        prompt.render({"items": [1, 2, 3]})

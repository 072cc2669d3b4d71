"""Prompt rendering: versioned Jinja2 templates in a sandbox, strict about undefined names.

Jinja2 is imported when a prompt is first compiled, not with this module: a server that
only relays model calls never loads it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.core.errors import InvalidInputError, TemplateError
from keel.core.messages import Message
from keel.core.spec import PromptSpec

if TYPE_CHECKING:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

Variables = Mapping[str, Any]


def _environment() -> ImmutableSandboxedEnvironment:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def _compile(env: ImmutableSandboxedEnvironment, name: str, source: str) -> jinja2.Template:
    import jinja2

    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"{name} template has a syntax error on line {exc.lineno}: {exc.message}",
            template=name,
            line=exc.lineno,
        ) from exc


def _render(template: jinja2.Template, name: str, variables: Variables) -> str:
    import jinja2
    from jinja2.exceptions import SecurityError

    try:
        return template.render(variables).strip()
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"{name} template uses an undefined variable: {exc.message}. Add it to the "
            "input mapping or the input, or guard it with `is defined`.",
            code="template_render_failed",
            template=name,
        ) from exc
    except SecurityError as exc:
        raise TemplateError(
            f"{name} template tried an unsafe operation: {exc}",
            code="template_unsafe",
            template=name,
        ) from exc
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as exc:
        raise TemplateError(
            f"{name} template failed to render: {exc}",
            code="template_render_failed",
            template=name,
        ) from exc


@dataclass(frozen=True, slots=True)
class CompiledPrompt:
    """System and user templates compiled once per pipeline version."""

    system: jinja2.Template | None
    user: jinja2.Template
    examples: tuple[tuple[Mapping[str, Any], str], ...]

    @classmethod
    def compile(cls, spec: PromptSpec) -> CompiledPrompt:
        env = _environment()
        system = _compile(env, "system", spec.system) if spec.system else None
        user = _compile(env, "user", spec.user)
        examples = tuple((example.input, example.output) for example in spec.examples)
        return cls(system, user, examples)

    def render(
        self,
        variables: Variables,
        example_variables: Callable[[Mapping[str, Any]], Variables] | None = None,
        shared: Variables | None = None,
    ) -> tuple[Message, ...]:
        """Messages for one run: system, few-shot pairs, then the user turn.

        ``example_variables`` maps an example's input the same way a real input is mapped;
        ``shared`` holds variables every template sees (thresholds, labels).
        """
        common = dict(shared or {})
        messages: list[Message] = []
        if self.system is not None:
            messages.append(
                Message("system", _render(self.system, "system", common | dict(variables)))
            )
        for raw_input, answer in self.examples:
            try:
                mapped = example_variables(raw_input) if example_variables else raw_input
            except InvalidInputError as exc:
                raise TemplateError(
                    f"a few-shot example does not fit the input mapping: {exc.message}",
                    code="example_invalid",
                ) from exc
            messages.append(Message("user", _render(self.user, "user", common | dict(mapped))))
            messages.append(Message("assistant", answer))
        messages.append(Message("user", _render(self.user, "user", common | dict(variables))))
        return tuple(messages)

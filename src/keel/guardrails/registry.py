"""Built-in scanners by name: which directions they guard, whether they find spans, how to build.

A policy is checked against this table when a pipeline version is pushed, so a typo in a
scanner name or option is a ``SpecError`` then, never a failure at request time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from keel.core.errors import SpecError
from keel.core.guardrail_policy import ScannerRule
from keel.guardrails import content, injection, output, pii, secrets
from keel.guardrails.shared_models import SharedModels
from keel.guardrails.verdict import Scanner

_SPAN_ACTIONS = frozenset({"redact", "anonymize"})


@dataclass(frozen=True, slots=True)
class ScannerType:
    build: Callable[[dict[str, Any], SharedModels], Scanner]
    directions: frozenset[str]
    finds_spans: bool
    options: frozenset[str] = frozenset()


Build = Callable[[dict[str, Any], SharedModels], Scanner]


def _no_options(factory: Callable[[], Scanner]) -> Build:
    return lambda options, models: factory()


def _options_only(factory: Callable[[dict[str, Any]], Scanner]) -> Build:
    return lambda options, models: factory(options)


_BOTH = frozenset({"input", "output"})
BUILTIN: Mapping[str, ScannerType] = MappingProxyType(
    {
        "pii": ScannerType(
            _options_only(pii.build_pii), _BOTH, True, frozenset({"entities", "regions"})
        ),
        "secrets": ScannerType(_no_options(secrets.SecretsScanner), _BOTH, True),
        "prompt_injection": ScannerType(
            injection.build_injection, _BOTH, False, frozenset({"classifier"})
        ),
        "invisible_text": ScannerType(_no_options(content.InvisibleTextScanner), _BOTH, True),
        "toxicity": ScannerType(_no_options(content.ToxicityScanner), _BOTH, False),
        "banned_topics": ScannerType(
            content.build_banned_topics, _BOTH, False, frozenset({"topics"})
        ),
        "length": ScannerType(
            _options_only(content.build_length),
            _BOTH,
            False,
            frozenset({"max_chars", "max_tokens"}),
        ),
        "code_injection": ScannerType(
            _no_options(content.CodeInjectionScanner), frozenset({"input"}), True
        ),
        "pii_leakage": ScannerType(
            _options_only(output.build_pii_leakage),
            frozenset({"output"}),
            True,
            frozenset({"entities", "regions"}),
        ),
        "system_prompt_leakage": ScannerType(
            _no_options(output.PromptLeakageScanner), frozenset({"output"}), True
        ),
        "exfiltration": ScannerType(
            _options_only(output.build_exfiltration),
            frozenset({"output"}),
            True,
            frozenset({"allowed_domains"}),
        ),
        "json": ScannerType(
            _options_only(output.build_json), frozenset({"output"}), False, frozenset({"schema"})
        ),
        "refusal": ScannerType(_no_options(output.RefusalScanner), frozenset({"output"}), False),
    }
)


def build_scanner(rule: ScannerRule, direction: str, models: SharedModels | None = None) -> Scanner:
    """The scanner a rule names, its options and action checked; raises SpecError.

    ``models`` shares loaded models between scanners (pass the plugin's); without it, this
    scanner loads its own.
    """
    where = f"guardrails.{direction} rule {rule.rule!r}"
    kind = BUILTIN.get(rule.scanner)
    if kind is None:
        raise SpecError(
            f"{where}: unknown scanner {rule.scanner!r}; available: {sorted(BUILTIN)}",
            code="guardrail_invalid",
        )
    if direction not in kind.directions:
        raise SpecError(
            f"{where}: scanner {rule.scanner!r} only guards {sorted(kind.directions)}",
            code="guardrail_invalid",
        )
    unknown = sorted(set(rule.options) - kind.options)
    if unknown:
        raise SpecError(
            f"{where}: unknown options {unknown}; {rule.scanner!r} takes {sorted(kind.options)}",
            code="guardrail_invalid",
        )
    if rule.action in _SPAN_ACTIONS and not kind.finds_spans:
        raise SpecError(
            f"{where}: action {rule.action!r} needs a scanner that finds spans; "
            f"{rule.scanner!r} scores the whole text (use block, flag or review)",
            code="guardrail_invalid",
        )
    try:
        return kind.build(dict(rule.options), models or SharedModels())
    except SpecError as exc:
        raise SpecError(f"{where}: {exc.message}", code="guardrail_invalid") from exc

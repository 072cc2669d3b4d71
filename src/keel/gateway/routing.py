"""Routing rules: an alias sends a request to the chain of the first rule it matches
(prompt length, request metadata such as tags or a cost tier, the calling key), else to
its default chain. Each decision is recorded on the request's span."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keel.core.messages import Message
from keel.settings import RouteRule


@dataclass(frozen=True, slots=True)
class RouteDecision:
    chain: tuple[str, ...]
    rule: int | None  # index of the matching rule; None for the alias's default chain

    @property
    def reason(self) -> str:
        return "default" if self.rule is None else f"rule {self.rule}"


def prompt_chars(messages: Sequence[Message]) -> int:
    return sum(len(message.content) for message in messages)


def matches(rule: RouteRule, chars: int, metadata: Mapping[str, Any], caller: str | None) -> bool:
    if rule.min_prompt_chars is not None and chars < rule.min_prompt_chars:
        return False
    if rule.max_prompt_chars is not None and chars > rule.max_prompt_chars:
        return False
    if any(str(metadata.get(key)) != value for key, value in rule.metadata.items()):
        return False
    return not rule.callers or any(
        fnmatch.fnmatchcase(caller or "", pattern) for pattern in rule.callers
    )


def route(
    rules: Sequence[RouteRule],
    default: tuple[str, ...],
    messages: Sequence[Message],
    extra: Mapping[str, Any],
    caller: str | None,
) -> RouteDecision:
    metadata = extra.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    chars = prompt_chars(messages)
    for index, rule in enumerate(rules):
        if matches(rule, chars, metadata, caller):
            return RouteDecision(tuple(rule.models), index)
    return RouteDecision(default, None)

"""Shared conversations before a person sees them: a PII scrub, then an abuse and prank filter.

The scrub runs the guardrails' PII scanner over every string in the conversation (input,
the model's answer, the correction and the comment) and replaces each finding by
``[ENTITY]``. The filter flags, with a reason each:

* ``toxic``: the guardrails' toxicity scanner scores any of that text at or above the
  threshold;
* ``gibberish``: most longer words of the user's own text (correction, comment) have no
  vowel or a run of five or more consonants (keyboard mashing);
* ``repeated_characters``: a character six times in a row, or a word four times in a row;
* ``joke``: the correction or comment holds an obvious prank marker (lol, haha, asdf, …);
* ``flooding``: the user sent more corrections in the last hour than the configured limit.

Flagged items are kept (status ``filtered``) so reviewers can see what was filtered, but they
can only be rejected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from keel.guardrails.verdict import ScanContext, Scanner

_REPEATED = re.compile(r"(.)\1{5,}|\b(\w+)(?:\s+\2\b){3,}", re.IGNORECASE | re.DOTALL)
_WORD = re.compile(r"[a-z]+")
_CONSONANT_RUN = re.compile(r"[^aeiouy]{5,}")
_JOKE = re.compile(
    r"\b(?:lol+|lmao+|rofl|ha(?:ha)+h?|he(?:he)+|xd+|jk|just kidding|asdf\w*|qwerty|"
    r"banana|poop|your mom|yo mama|420|69)\b|[\U0001f602\U0001f923\U0001f4a9\U0001f921]",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Conversation:
    """A shared trace with the user's feedback: what the scrub and filter look at."""

    input: Any
    output: Any
    label: str | None = None
    expected: Any = None
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class Screened:
    conversation: Conversation
    pii: tuple[str, ...]
    flags: tuple[str, ...]


def strings(value: Any) -> Iterable[str]:
    """Every string inside a JSON value (keys excluded)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {key: _map_strings(item, fn) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_map_strings(item, fn) for item in value]
    return value


def is_gibberish(text: str) -> bool:
    words = [w for w in _WORD.findall(text.lower()) if len(w) >= 4]
    if not words:
        return False
    odd = sum(1 for w in words if not set(w) & set("aeiouy") or _CONSONANT_RUN.search(w))
    return odd * 2 >= len(words)


def user_text_flags(texts: Iterable[str]) -> list[str]:
    """Heuristic flags on text the user wrote (correction and comment)."""
    flags: set[str] = set()
    for text in texts:
        if _REPEATED.search(text):
            flags.add("repeated_characters")
        if _JOKE.search(text):
            flags.add("joke")
        if is_gibberish(text):
            flags.add("gibberish")
    return sorted(flags)


class FeedbackScreen:
    """The scrub and the filter, given the PII scrubber and the toxicity scanner to use."""

    def __init__(
        self,
        scrub: Callable[[str], tuple[str, tuple[str, ...]]],
        toxicity: Scanner | None,
        toxicity_threshold: float = 0.8,
    ) -> None:
        self._scrub = scrub
        self._toxicity = toxicity
        self._threshold = toxicity_threshold

    def screen(self, conversation: Conversation, *, flooding: bool = False) -> Screened:
        found: set[str] = set()

        def scrub(text: str) -> str:
            clean, entities = self._scrub(text)
            found.update(entities)
            return clean

        scrubbed = Conversation(
            input=_map_strings(conversation.input, scrub),
            output=_map_strings(conversation.output, scrub),
            label=conversation.label,
            expected=_map_strings(conversation.expected, scrub),
            comment=scrub(conversation.comment) if conversation.comment else None,
        )
        user_texts = [*strings(conversation.expected), *strings(conversation.label)]
        if conversation.comment:
            user_texts.append(conversation.comment)
        flags = set(user_text_flags(user_texts))
        if flooding:
            flags.add("flooding")
        if self._is_toxic([*strings(conversation.input), *user_texts]):
            flags.add("toxic")
        return Screened(scrubbed, tuple(sorted(found)), tuple(sorted(flags)))

    def _is_toxic(self, texts: list[str]) -> bool:
        if self._toxicity is None:
            return False
        context = ScanContext()
        return any(self._toxicity.scan(t, context).score >= self._threshold for t in texts if t)

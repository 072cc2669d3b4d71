"""Content scanners: invisible text, toxicity, banned topics, length, SQL/template injection."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.core.errors import SpecError
from keel.guardrails.normalize import deleet, normalize
from keel.guardrails.verdict import Finding, ScanContext, Verdict

if TYPE_CHECKING:
    from keel.guardrails.shared_models import SharedModels

_HIDDEN = re.compile(
    "[\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]"
    r"|\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
)


@dataclass(frozen=True, slots=True)
class InvisibleTextScanner:
    """Zero-width, bidi-override and tag characters, ANSI escapes and control codes."""

    name: str = "invisible_text"

    def scan(self, text: str, context: ScanContext) -> Verdict:
        findings = tuple(Finding(m.start(), m.end(), "INVISIBLE") for m in _HIDDEN.finditer(text))
        if not findings:
            return Verdict.clean("invisible_text")
        return Verdict(1.0, "invisible_text", findings, f"{len(findings)} hidden characters")


# A small lexicon of slurs and abuse that the linear model under-weights; matched on words.
_LEXICON = re.compile(
    r"\b(?:kill yourself|kys|go die|retard(?:ed)?|faggot|nigger|nigga|tranny|spic|kike|chink|"
    r"wetback|cunt|whore|slut|subhuman|vermin|worthless piece of)\b"
)


@dataclass(frozen=True, slots=True)
class ToxicityScanner:
    """``alt-profanity-check``'s linear model, maxed with a lexicon of slurs and threats."""

    name: str = "toxicity"

    def scan(self, text: str, context: ScanContext) -> Verdict:
        from profanity_check import predict_prob  # heavy import: only when configured

        flat = normalize(text)
        findings = tuple(
            Finding(m.start(), m.end(), "ABUSE") for m in _LEXICON.finditer(deleet(flat))
        )
        model = float(predict_prob([flat])[0]) if flat else 0.0
        score = max(model, 1.0 if findings else 0.0)
        return Verdict(score, "toxicity", findings, "lexicon" if findings else "model")


@dataclass(frozen=True, slots=True)
class BannedTopicsScanner:
    """Embedding similarity (WordLlama, weights shipped in its wheel) between each chunk of
    the text and each topic's example phrases; the score is the best cosine similarity."""

    topics: tuple[tuple[str, Any], ...]  # (topic, normalized phrase embeddings)
    model: Any
    name: str = "banned_topics"

    def scan(self, text: str, context: ScanContext) -> Verdict:
        chunks = [c for c in re.split(r"(?<=[.!?\n])\s+", text[:20_000]) if c.strip()] or [text]
        vectors = _unit(self.model.embed(chunks))
        best, which = 0.0, ""
        for topic, phrases in self.topics:
            score = float((vectors @ phrases.T).max())
            if score > best:
                best, which = score, topic
        return (
            Verdict(min(best, 1.0), "banned_topic", (), which)
            if best > 0
            else Verdict.clean("banned_topic")
        )


def _unit(matrix: Any) -> Any:
    import numpy as np

    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


def load_wordllama() -> Any:
    """WordLlama from its installed package directory; never downloads."""
    import importlib.util
    from pathlib import Path

    from wordllama import WordLlama

    spec = importlib.util.find_spec("wordllama")
    assert spec is not None and spec.origin is not None
    return WordLlama.load(cache_dir=Path(spec.origin).parent, disable_download=True)


@dataclass(frozen=True, slots=True)
class LengthScanner:
    """Characters and (approximate, 4 chars a token) tokens over a limit."""

    max_chars: int
    max_tokens: int | None
    name: str = "length"

    def scan(self, text: str, context: ScanContext) -> Verdict:
        tokens = len(text) / 4
        over_chars = len(text) > self.max_chars
        over_tokens = self.max_tokens is not None and tokens > self.max_tokens
        if over_chars or over_tokens:
            return Verdict(1.0, "length", (), f"{len(text)} chars, ~{int(tokens)} tokens")
        return Verdict.clean("length")


_SQL = re.compile(
    r"(?i)(?:'\s*(?:or|and)\s+'?\d*'?\s*=\s*'?\d*|'\s*;\s*(?:drop|delete|update|insert|alter|create|exec)\b"
    r"|\bunion(?:\s+all)?\s+select\b|;\s*drop\s+table\b|--\s*$|/\*.*?\*/|\bxp_cmdshell\b"
    r"|\b(?:sleep|benchmark|pg_sleep)\s*\(\s*\d+|\bwaitfor\s+delay\b|\binformation_schema\b)"
)
_TEMPLATE = re.compile(
    r"\{\{.*?\}\}|\{%.*?%\}|\$\{[^}]*\}|<%=?.*?%>|#\{[^}]*\}|__(?:class|globals|builtins|subclasses|mro)__"
)


@dataclass(frozen=True, slots=True)
class CodeInjectionScanner:
    """SQL and server-side template injection patterns, for pipelines feeding a database."""

    name: str = "code_injection"

    def scan(self, text: str, context: ScanContext) -> Verdict:
        findings = [Finding(m.start(), m.end(), "SQL") for m in _SQL.finditer(text)]
        findings += [Finding(m.start(), m.end(), "TEMPLATE") for m in _TEMPLATE.finditer(text)]
        if not findings:
            return Verdict.clean("code_injection")
        reason = ",".join(sorted({f.entity for f in findings}))
        return Verdict(1.0, "code_injection", tuple(findings), reason)


def build_banned_topics(options: dict[str, Any], models: SharedModels) -> BannedTopicsScanner:
    topics = options.get("topics")
    if not isinstance(topics, dict) or not topics:
        raise SpecError(
            "banned_topics needs options.topics: a mapping of topic -> example phrases",
            code="guardrail_invalid",
        )
    model = models.wordllama()  # one embedder per process, shared by every version
    built = []
    for topic, phrases in topics.items():
        listed = [phrases] if isinstance(phrases, str) else phrases
        if (
            not isinstance(listed, list)
            or not listed
            or not all(isinstance(p, str) for p in listed)
        ):
            raise SpecError(
                f"banned_topics: topic {topic!r} needs a phrase or a list of phrases",
                code="guardrail_invalid",
            )
        built.append((str(topic), _unit(model.embed(listed))))
    return BannedTopicsScanner(tuple(built), model)


def build_length(options: dict[str, Any]) -> LengthScanner:
    max_chars = options.get("max_chars", 20_000)
    max_tokens = options.get("max_tokens")
    for key, value in (("max_chars", max_chars), ("max_tokens", max_tokens)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise SpecError(f"length: {key} must be a positive integer", code="guardrail_invalid")
    return LengthScanner(max_chars, max_tokens)

"""Output scanners: PII and system-prompt leakage, exfiltration links, JSON, refusals."""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.core.errors import SpecError
from keel.guardrails.normalize import normalize
from keel.guardrails.pii import PiiScanner, build_pii
from keel.guardrails.verdict import Finding, ScanContext, Verdict, merge_spans

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator


@dataclass(frozen=True, slots=True)
class PiiLeakageScanner:
    """PII in the answer that was not in the input: the model made it up or leaked it."""

    pii: PiiScanner
    name: str = "pii_leakage"

    def scan(self, text: str, context: ScanContext) -> Verdict:
        # A value that appears in the input is not a leak; a substring check is enough.
        leaked = tuple(
            f for f in self.pii.find(text) if text[f.start : f.end] not in context.input_text
        )
        if not leaked:
            return Verdict.clean("pii_leakage")
        return Verdict(
            max(f.score for f in leaked),
            "pii_leakage",
            leaked,
            ",".join(sorted({f.entity for f in leaked})),
        )


def _shingles(text: str, size: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9]+", normalize(text))
    return {tuple(words[i : i + size]) for i in range(max(len(words) - size + 1, 0))}


@dataclass(frozen=True, slots=True)
class PromptLeakageScanner:
    """The canary token placed in the system prompt, or a large share of its 5-word shingles."""

    name: str = "system_prompt_leakage"

    def scan(self, text: str, context: ScanContext) -> Verdict:
        if context.canary and context.canary in text:
            start = text.index(context.canary)
            finding = Finding(start, start + len(context.canary), "CANARY")
            return Verdict(1.0, "prompt_leakage", (finding,), "canary token in the answer")
        prompt = _shingles(context.system_prompt)
        if not prompt:
            return Verdict.clean("prompt_leakage")
        share = len(prompt & _shingles(text)) / len(prompt)
        return Verdict(share, "prompt_leakage", (), f"{share:.0%} of the system prompt repeated")


_MD_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)")
_MD_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)")
_REF_DEF = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
_HTML_SRC = re.compile(
    r"<(?:img|iframe|script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"']?([^\"'\s>]+)", re.I
)
_BARE_URL = re.compile(r"\bhttps?://[^\s)<>\"']+", re.I)


@dataclass(frozen=True, slots=True)
class ExfiltrationScanner:
    """Markdown images (fetched on render: data leaves in the query), links and URLs to hosts
    outside ``allowed_domains``."""

    allowed: tuple[str, ...]
    name: str = "exfiltration"

    def _allowed(self, url: str) -> bool:
        host = (urllib.parse.urlsplit(url).hostname or "").lower()
        return bool(host) and any(host == d or host.endswith("." + d) for d in self.allowed)

    def scan(self, text: str, context: ScanContext) -> Verdict:
        findings: list[Finding] = []
        for entity, pattern in (("MD_IMAGE", _MD_IMAGE), ("HTML_SRC", _HTML_SRC)):
            for m in pattern.finditer(text):
                if not self._allowed(m.group(1)):
                    findings.append(Finding(m.start(), m.end(), entity, 1.0))
        for entity, pattern in (("MD_LINK", _MD_LINK), ("REF_LINK", _REF_DEF), ("URL", _BARE_URL)):
            for m in pattern.finditer(text):
                url = m.group(1) if pattern.groups else m.group()
                if url.lower().startswith(
                    ("http", "//", "data:", "javascript:")
                ) and not self._allowed(url):
                    query = bool(urllib.parse.urlsplit(url).query)
                    findings.append(Finding(m.start(), m.end(), entity, 0.9 if query else 0.6))
        if not findings:
            return Verdict.clean("exfiltration")
        findings = list(merge_spans(tuple(findings)))
        return Verdict(
            max(f.score for f in findings),
            "exfiltration",
            tuple(findings),
            ",".join(sorted({f.entity for f in findings})),
        )


@dataclass(frozen=True, slots=True)
class JsonScanner:
    """The answer must be JSON (fenced JSON accepted) and, when given, match a schema."""

    validator: Draft202012Validator | None
    name: str = "json"

    def scan(self, text: str, context: ScanContext) -> Verdict:
        body = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", text)
        try:
            value = json.loads(body)
        except ValueError as exc:
            return Verdict(1.0, "json_invalid", (), f"not JSON: {exc}")
        if self.validator is not None:
            error = next(iter(self.validator.iter_errors(value)), None)
            if error is not None:
                return Verdict(1.0, "json_invalid", (), f"schema: {error.message[:200]}")
        return Verdict.clean("json_invalid")


_REFUSAL = re.compile(
    r"\b(?:i(?:'m| am) (?:sorry|afraid)|i (?:can(?:no|')t|won't|will not|am unable to|"
    r"'m unable to|am not able to|must decline)|as an ai(?: language model)?|"
    r"i'm not (?:able|allowed|permitted) to|"
    r"(?:that|this) (?:request )?(?:goes against|violates)|i don't feel comfortable|"
    r"cannot (?:help|assist) with)\b"
)


@dataclass(frozen=True, slots=True)
class RefusalScanner:
    """The model declined; useful to flag or to route to a human."""

    name: str = "refusal"

    def scan(self, text: str, context: ScanContext) -> Verdict:
        hits = list(_REFUSAL.finditer(normalize(text[:600])))
        if not hits:
            return Verdict.clean("refusal")
        return Verdict(min(0.6 + 0.2 * len(hits), 1.0), "refusal", (), hits[0].group())


def build_pii_leakage(options: dict[str, Any]) -> PiiLeakageScanner:
    return PiiLeakageScanner(build_pii(options))


def build_exfiltration(options: dict[str, Any]) -> ExfiltrationScanner:
    allowed = options.get("allowed_domains", [])
    if not isinstance(allowed, list) or not all(isinstance(d, str) for d in allowed):
        raise SpecError(
            "exfiltration: allowed_domains must be a list of host names", code="guardrail_invalid"
        )
    return ExfiltrationScanner(tuple(d.lower().lstrip(".") for d in allowed))


def build_json(options: dict[str, Any]) -> JsonScanner:
    schema = options.get("schema")
    if schema is None:
        return JsonScanner(None)
    from jsonschema import Draft202012Validator  # deferred: only JSON scanners need it
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise SpecError(
            f"json: options.schema is not a valid JSON Schema: {exc.message}",
            code="guardrail_invalid",
        ) from exc
    return JsonScanner(Draft202012Validator(schema))

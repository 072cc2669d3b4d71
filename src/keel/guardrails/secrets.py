"""Secrets: cloud keys, API tokens, private keys and passwords written into code or config."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from keel.guardrails.verdict import Finding, ScanContext, Verdict

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("AWS_ACCESS_KEY", r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
        (
            "AWS_SECRET_KEY",
            r"(?i)aws.{0,20}?(?:secret|private).{0,20}?['\"=:\s]\s*([A-Za-z0-9/+=]{40})\b",
        ),
        ("GITHUB_TOKEN", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b"),
        ("GITLAB_TOKEN", r"\bglpat-[A-Za-z0-9_-]{20,}\b"),
        ("SLACK_TOKEN", r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),
        ("SLACK_WEBHOOK", r"https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}"),
        ("STRIPE_KEY", r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\b"),
        ("OPENAI_KEY", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}\b"),
        ("ANTHROPIC_KEY", r"\bsk-ant-[A-Za-z0-9_-]{20,}\b"),
        ("GOOGLE_API_KEY", r"\bAIza[0-9A-Za-z_-]{35}\b"),
        ("AZURE_STORAGE_KEY", r"AccountKey=[A-Za-z0-9+/=]{60,}"),
        ("JWT", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        ("PRIVATE_KEY", r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY(?: BLOCK)?-----"),
        ("BASIC_AUTH_URL", r"\b[a-z][a-z0-9+.-]*://[^\s:/@]+:[^\s:/@]{3,}@[^\s/]+"),
        ("BEARER_TOKEN", r"(?i)\bauthorization:\s*bearer\s+[A-Za-z0-9._~+/-]{20,}=*"),
    )
)
# password = "...", PASSWORD: ..., "api_key": "..." -- assignments in code or config.
_ASSIGNMENT = re.compile(
    r"(?i)(?<![a-z0-9])(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|"
    r"client[_-]?secret)(?![a-z0-9])[\"']?\s*(?:=|:|=>)\s*[\"']?([^\s\"',;]{6,})"
)
_PLACEHOLDER = re.compile(
    r"(?i)^(?:x+|\*+|\.+|<.*>|\$\{.*\}|\{\{.*\}\}|changeme|password|none|null)$"
)


def entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


@dataclass(frozen=True, slots=True)
class SecretsScanner:
    """Known token formats score 1; a password assignment scores by the value's entropy."""

    name: str = "secrets"

    def scan(self, text: str, context: ScanContext) -> Verdict:
        findings: list[Finding] = []
        for entity, pattern in _PATTERNS:
            for match in pattern.finditer(text):
                group = 1 if pattern.groups else 0
                findings.append(Finding(match.start(group), match.end(group), entity))
        for match in _ASSIGNMENT.finditer(text):
            value = match.group(1)
            if _PLACEHOLDER.match(value):
                continue
            score = 0.9 if entropy(value) >= 2.5 else 0.6
            findings.append(Finding(match.start(1), match.end(1), "PASSWORD", score))
        if not findings:
            return Verdict.clean("secret")
        top = max(f.score for f in findings)
        return Verdict(
            top, "secret", tuple(findings), ", ".join(sorted({f.entity for f in findings}))
        )

"""Applies a pipeline's logging policy to span payloads before any exporter sees them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from keel.core.logging_policy import LoggingPolicy
from keel.guardrails.actions import redact
from keel.guardrails.pii import PiiScanner, build_pii
from keel.guardrails.secrets import SecretsScanner
from keel.guardrails.verdict import ScanContext

_NONE = ScanContext()


@dataclass(frozen=True, slots=True)
class Redactor:
    """PII and secrets replaced by ``[ENTITY]`` in a text."""

    pii: PiiScanner
    secrets: SecretsScanner

    @classmethod
    def default(cls) -> Redactor:
        return cls(build_pii({}), SecretsScanner())

    def __call__(self, text: str) -> str:
        findings = self.pii.find(text) + self.secrets.scan(text, _NONE).findings
        return redact(text, findings) if findings else text

    def json(self, text: str) -> str:
        """Redact every string (and long number) inside a JSON text; the result stays JSON."""
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            return orjson.dumps(self(text)).decode()
        return orjson.dumps(self._walk(value)).decode()

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self(value)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1_000_000:
            # card and phone numbers sent as JSON numbers
            redacted = self(str(value))
            return value if redacted == str(value) else redacted
        if isinstance(value, dict):
            return {k: self._walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        return value


def fingerprint(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PolicyFilter:
    """A ``PayloadFilter``: the JSON text of a payload, as the policy says to store it."""

    policy: LoggingPolicy
    redactor: Redactor

    def __call__(self, layer: str, field: str, text: str) -> str | None:
        # error messages may quote the input, so they are stored as the input is
        mode = self.policy.mode(layer, "input" if field == "error" else field)
        if mode == "raw":
            return text
        if mode == "dropped":
            return None
        if mode == "hashed":
            return orjson.dumps(fingerprint(text)).decode()
        return self.redactor.json(text)

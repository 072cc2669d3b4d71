"""One exception tree for all of Keel.

Every error a user can see carries a stable machine-readable ``code``, an HTTP ``status``
and a message that says what to do. Adapters translate foreign exceptions into this tree
at their boundary (``raise ProviderTimeout(...) from exc``); the server turns any of them
into one JSON envelope and the CLI prints the message without a traceback.

    KeelError
    ├── ConfigError                settings or environment are wrong
    ├── SpecError                  a pipeline spec or template is invalid
    │   └── TemplateError          a prompt template failed to compile or render
    ├── InvalidInputError          a request or pipeline input is malformed
    │   └── TargetRefused          a webhook URL is not http(s) or is not public
    ├── NotFoundError              a named thing does not exist
    ├── ConflictError              the request contradicts stored state
    ├── HeldForReview              the answer waits for a reviewer (202, not an error)
    ├── OutputParseError           the model's output could not be parsed
    ├── GuardrailBlocked           a guardrail rule blocked the input or the answer
    └── ProviderError              the model (or its endpoint) failed
        ├── ProviderTimeout
        ├── ProviderConnectionError
        ├── ProviderHTTPError      upstream answered 4xx/5xx
        ├── ProviderMalformedResponse
        ├── ProviderStreamError    the stream broke or ended early
        └── ProviderUnavailable    provider not installed / configured
"""

from __future__ import annotations

from typing import Any


class KeelError(Exception):
    """Base of every Keel error. ``code`` is stable and documented; never reuse one."""

    code: str = "keel_error"
    status: int = 500
    retryable: bool = False

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body

    def __str__(self) -> str:
        return self.message


class ConfigError(KeelError):
    code = "config_invalid"
    status = 500


class SpecError(KeelError):
    code = "spec_invalid"
    status = 422


class TemplateError(SpecError):
    code = "template_error"
    status = 422


class InvalidInputError(KeelError):
    code = "invalid_input"
    status = 422


class TargetRefused(InvalidInputError):
    """A webhook target Keel will not call: not http(s), or resolving to a private address."""

    code = "notification_target_refused"
    status = 422


class NotFoundError(KeelError):
    code = "not_found"
    status = 404


class ConflictError(KeelError):
    code = "conflict"
    status = 409


class HeldForReview(KeelError):
    """Not a failure: the answer waits for a human decision (HTTP 202 with where to poll)."""

    code = "held_for_review"
    status = 202


class OutputParseError(KeelError):
    code = "output_unparseable"
    status = 502


class ProviderError(KeelError):
    """The model or its endpoint failed. ``provider`` and ``model`` go into details."""

    code = "provider_error"
    status = 502


class ProviderTimeout(ProviderError):
    code = "provider_timeout"
    status = 504
    retryable = True


class ProviderConnectionError(ProviderError):
    code = "provider_unreachable"
    status = 502
    retryable = True


class ProviderHTTPError(ProviderError):
    """Upstream answered with an HTTP error; the code depends on the status class."""

    code = "provider_http_error"
    status = 502

    def __init__(self, message: str, *, upstream_status: int, **details: Any) -> None:
        super().__init__(message, code=_code_for_upstream(upstream_status), **details)
        self.upstream_status = upstream_status
        self.details["upstream_status"] = upstream_status
        if upstream_status in (400, 404, 413, 422):
            self.status = 400
        elif upstream_status == 429:
            self.status = 429
        self.retryable = upstream_status in (408, 409, 429) or upstream_status >= 500


def _code_for_upstream(status: int) -> str:
    if 300 <= status < 400:
        return "provider_redirected"  # never followed: a redirect could bounce past the guard
    if status in (401, 403):
        return "provider_auth_failed"
    if status == 404:
        return "provider_model_not_found"
    if status == 429:
        return "provider_rate_limited"
    if 400 <= status < 500:
        return "provider_bad_request"
    return "provider_server_error"


class ProviderMalformedResponse(ProviderError):
    code = "provider_malformed_response"
    status = 502


class ProviderStreamError(ProviderError):
    code = "provider_stream_broken"
    status = 502
    retryable = True


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    status = 503


class GuardrailBlocked(KeelError):
    """A guardrail rule blocked the input (no model call) or the answer.

    ``details.rule`` names the rule, ``details.direction`` says which side it guarded.
    """

    code = "guardrail_blocked"
    status = 422

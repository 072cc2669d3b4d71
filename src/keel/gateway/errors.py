"""Errors of the gateway surface, each with its HTTP status and a stable code."""

from __future__ import annotations

from keel.core.errors import InvalidInputError, KeelError


class BadRequest(InvalidInputError):
    """The request body does not follow the OpenAI chat API (HTTP 400, as OpenAI answers)."""

    code = "request_invalid"
    status = 400


class BodyTooLarge(InvalidInputError):
    code = "body_too_large"
    status = 413


class Unauthorized(KeelError):
    code = "auth_required"
    status = 401


class Forbidden(KeelError):
    code = "forbidden"
    status = 403


class RateLimited(KeelError):
    """A key's limit or budget is used up; ``retry_after`` (seconds) goes to ``Retry-After``."""

    code = "rate_limited"
    status = 429


class CircuitOpen(KeelError):
    """A provider endpoint failed too often; calls are refused until a probe succeeds."""

    code = "circuit_open"
    status = 503
    retryable = False

"""Authentication and role checks for every endpoint except the health probes.

A pure ASGI middleware (inside the correlation middleware, so errors carry the request id):
it reads ``Authorization: Bearer <key>`` (or ``x-api-key``), resolves the key to a
``Principal``, checks the role against the path, applies the key's request rate to ``/v1``
calls and leaves the principal in ``request.state.principal``. Model and pipeline scopes
are checked by the handlers, which know what is being called.

Roles: ``service`` may call ``/v1`` (inference) only; ``developer`` also the ``/api``
data and pipeline endpoints and ``/metrics``; ``admin`` everything, including keys and
the audit log.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from keel.core.errors import KeelError
from keel.gateway.errors import Forbidden
from keel.gateway.keys import Principal
from keel.gateway.setup import Auth
from keel.server.responses import JSONBytes, error_body

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/openapi.json"})
_ADMIN_PREFIXES = ("/api/keys", "/api/audit")


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
        if name == b"x-api-key":
            return value.decode("latin-1").strip()
    return None


def check_role(principal: Principal, path: str) -> None:
    if path.startswith(_ADMIN_PREFIXES) and principal.role != "admin":
        raise Forbidden(
            "only admin keys may manage keys and read the audit log", code="role_denied"
        )
    if principal.role == "service" and not path.startswith("/v1/"):
        raise Forbidden(
            "service keys may call the /v1 inference endpoints only; use a developer key",
            code="role_denied",
        )


class AuthMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        auth: Auth = scope["app"].state.auth
        path: str = scope["path"]
        try:
            principal = auth.keys.authenticate(presented_key(scope["headers"]))
            check_role(principal, path)
            if path.startswith("/v1/"):
                await auth.limiter.admit(principal)
        except KeelError as exc:
            if exc.status == 429:
                scope["app"].state.metrics.rejections.labels(exc.code).inc()
            correlation = scope.get("state", {}).get("correlation")
            request_id = correlation.request_id if correlation is not None else None
            await refusal(exc, request_id)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def refusal(exc: KeelError, request_id: str | None) -> JSONBytes:
    """The 401/403/429 answer, with ``Retry-After`` or ``WWW-Authenticate`` as they apply."""
    headers = {}
    retry_after = exc.details.get("retry_after")
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after))
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONBytes(
        error_body(exc.code, exc.message, request_id, exc.details),
        status_code=exc.status,
        headers=headers,
    )

"""One error handler: every failure leaves as the same JSON envelope, never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from keel.core.errors import KeelError
from keel.server.responses import JSONBytes, error_body

log = logging.getLogger("keel.server")

_HTTP_CODES = {
    404: ("route_not_found", "no such endpoint; see /docs for the API"),
    405: ("method_not_allowed", "this endpoint does not accept that HTTP method"),
}


def _request_id(request: Request) -> str | None:
    correlation = getattr(request.state, "correlation", None)
    return correlation.request_id if correlation else None


async def _keel_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KeelError)
    if exc.status >= 500:
        log.warning("%s: %s", exc.code, exc.message)
    headers = {}
    retry_after = exc.details.get("retry_after")
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after))
    body = error_body(exc.code, exc.message, _request_id(request), exc.details)
    return JSONBytes(body, status_code=exc.status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:10]
    ]
    body = error_body(
        "request_invalid",
        "the request does not match the API: " + "; ".join(problems),
        _request_id(request),
        {"problems": problems},
    )
    return JSONBytes(body, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code, message = _HTTP_CODES.get(exc.status_code, ("http_error", str(exc.detail)))
    body = error_body(code, message, _request_id(request))
    return JSONBytes(body, status_code=exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    request_id = _request_id(request)
    body = error_body(
        "internal_error",
        "Keel hit an unexpected error; the server log has the details under this request id",
        request_id,
    )
    # This handler runs outside the correlation middleware, so it sets the header itself.
    headers = {"x-request-id": request_id} if request_id else None
    return JSONBytes(body, status_code=500, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(KeelError, _keel_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


keel_error_response = _keel_error
"""The envelope response for a ``KeelError``, for ASGI code that runs outside the router."""

unexpected_error_response = _unexpected
"""The 500 envelope (logged, with the request id), for ASGI code that runs outside the router."""

"""One error family, rendered as RFC 9457 ``application/problem+json``.

Services raise ``AppError`` subclasses; FastAPI's own validation errors, HTTP errors and
malformed JSON are rendered the same way, and an unexpected exception becomes a 500
problem without internals (the traceback goes to the log).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("kizuna.errors")

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://kizuna.dev/problems/"


class AppError(Exception):
    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers
        self.extra = extra


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str = "A valid API key is required.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, code, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class InvalidInput(AppError):
    status, code, title = 422, "invalid-input", "Invalid input"


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload-too-large", "Payload too large"


def problem_response(
    status: int,
    *,
    code: str,
    title: str,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic errors in a stable, JSON-safe shape: ``{loc, msg, type}``."""
    return [
        {"loc": _location(err.get("loc", ())), "msg": str(err.get("msg", "")), "type": err.get("type", "")}
        for err in errors
    ]


async def _app_error(request: Request, exc: AppError) -> JSONResponse:
    return problem_response(
        exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        headers=exc.headers,
        **exc.extra,
    )


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if any(err.get("type") == "json_invalid" for err in errors):
        return problem_response(
            400,
            code="malformed-json",
            title="Malformed JSON",
            detail="The request body is not valid JSON.",
            instance=request.url.path,
        )
    details = validation_errors(errors)
    summary = "; ".join(f"{e['loc']}: {e['msg']}" for e in details[:5])
    return problem_response(
        422,
        code="invalid-input",
        title="Invalid input",
        detail=summary or "The request is invalid.",
        instance=request.url.path,
        errors=details,
    )


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    try:
        title = HTTPStatus(exc.status_code).phrase
    except ValueError:
        title = "Error"
    code = title.lower().replace(" ", "-")
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem_response(
        exc.status_code,
        code=code,
        title=title,
        detail=detail,
        instance=request.url.path,
        headers=getattr(exc, "headers", None),
    )


def _route(request: Request) -> str:
    """The route template for logs: paths carry external ids, often e-mail addresses."""
    route = request.scope.get("route")
    return getattr(route, "path", None) or "(unmatched route)"


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The pool re-connects on its own (pre-ping); the client may simply retry.
    log.error("database unavailable on %s %s: %s", request.method, _route(request), type(exc).__name__)
    return problem_response(
        503,
        code="database-unavailable",
        title="Service unavailable",
        detail="The database is not reachable right now; retry shortly.",
        instance=request.url.path,
        headers={"Retry-After": "5"},
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, _route(request))
    return problem_response(
        500,
        code="internal-error",
        title="Internal server error",
        detail="The server failed to handle this request; it has been logged.",
        instance=request.url.path,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)

"""One error base and one JSON envelope for every error the API returns:

{"error": {"code": ..., "message": ..., "details": ...}, "request_id": ...}
"""

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.logging import request_id_var


class AppError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = dict(headers or {})
        if code:
            self.code = code


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class ValidationFailed(AppError):
    """What a payload's validation answers (a service's own check of a request may too)."""

    status_code = 422
    code = "validation_error"


class ServiceUnavailable(AppError):
    """Something we depend on (the database, Redis) cannot serve the request now, or the request
    ran past its deadline before anything was committed: the same request may be sent again after
    `Retry-After` seconds (with the same Idempotency-Key where the endpoint takes one)."""

    status_code = 503
    code = "service_unavailable"

    def __init__(self, message: str, *, reason: str, retry_after: int) -> None:
        super().__init__(
            message, details={"reason": reason}, headers={"Retry-After": str(retry_after)}
        )


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody
    request_id: str | None = None


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorEnvelope(
        error=ErrorBody(code=code, message=message, details=details),
        request_id=request_id_var.get(),
    )
    return JSONResponse(
        body.model_dump(mode="json"), status_code=status_code, headers=dict(headers or {})
    )


# The code of an HTTPException (raised by Starlette or FastAPI) by its status.
_HTTP_CODES = {
    e.status_code: e.code
    for e in (AppError, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge)
} | {405: "method_not_allowed", 415: "unsupported_media_type", 429: "rate_limited"}


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    headers = exc.headers | ({"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {})
    return error_response(exc.status_code, exc.code, exc.message, exc.details, headers)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), None, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    too_many = [
        e for e in exc.errors() if e.get("type") == "too_long" and e["loc"][:1] == ("body",)
    ]
    if too_many:
        # An array in the body over its schema's maxItems: too much at once, not malformed.
        details = [{"loc": list(e["loc"]), "max_items": e["ctx"]["max_length"]} for e in too_many]
        field = ".".join(str(part) for part in too_many[0]["loc"][1:]) or "items"
        message = f"at most {details[0]['max_items']} {field} in one request"
        return error_response(413, PayloadTooLarge.code, message, details)
    details = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
        for e in exc.errors()
    ]
    return error_response(422, ValidationFailed.code, "Request validation failed", details)


def internal_error_response() -> JSONResponse:
    """A bug's 500: the envelope without internals (the request middleware sends it)."""
    return error_response(500, "internal_error", "Internal server error")


def unavailable_response(exc: ServiceUnavailable) -> JSONResponse:
    """A 503 sent by a middleware (outside the app's exception handlers)."""
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)


def too_many_items(what: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` of a bulk endpoint."""
    return {
        413: {
            "model": ErrorEnvelope,
            "description": f"`payload_too_large`: {what} (`details` names the maximum), "
            "or a body over MAX_REQUEST_BODY_BYTES",
        }
    }


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorEnvelope, "description": "Missing or invalid credentials"},
    404: {"model": ErrorEnvelope, "description": "Not found (or owned by another seller)"},
    422: {"model": ErrorEnvelope, "description": "Invalid request"},
    503: {
        "model": ErrorEnvelope,
        "description": "`service_unavailable`: the database or Redis cannot serve now, or the "
        "request ran past its deadline; send it again after `Retry-After`",
    },
}

"""WB's response envelopes, copied per API: each surface answers errors its own way."""

import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

from app.sandbox.clock import utc

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
_STATUS_TEXT = {401: "Unauthorized", 429: "Too Many Requests"}
_GATEWAY_TITLE = {401: "unauthorized", 429: "too many requests"}


def new_request_id() -> str:
    return uuid.uuid4().hex


def respond(
    body: Any,
    status: int = 200,
    *,
    media_type: str = JSON,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type=media_type)


class FeedbacksError(Exception):
    """feedbacks-api 400/403/404/422: `{data:null, error:true, errorText, ...}`."""

    def __init__(self, text: str, status: int = 400) -> None:
        super().__init__(text)
        self.text = text
        self.status = status


class BadBody(Exception):
    """feedbacks-api body that is not JSON (or not sent as JSON): the fbapi problem shape."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ChatError(Exception):
    """buyer-chat 400: `{status, title, origin:"proxy-chats", detail, requestId, error}`."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def feedbacks_ok(data: Any) -> Response:
    return respond({"data": data, "error": False, "errorText": "", "additionalErrors": None})


def feedbacks_error(exc: FeedbacksError, request_id: str) -> Response:
    body = {
        "data": None,
        "error": True,
        "errorText": exc.text,
        "additionalErrors": None,
        "requestId": request_id,
    }
    return respond(body, exc.status)


def bad_body(exc: BadBody, request_id: str) -> Response:
    body = {
        "title": "bad request",
        "requestId": request_id,
        "origin": "fbapi",
        "detail": exc.detail,
    }
    return respond(body, 400)


def chat_ok(result: Any, errors: list[str] | None = None) -> Response:
    return respond({"result": result, "errors": errors})


def chat_error(exc: ChatError, request_id: str) -> Response:
    body = {
        "status": 400,
        "title": "Bad Request",
        "origin": "proxy-chats",
        "detail": exc.detail,
        "requestId": request_id,
        "error": exc.detail,
    }
    return respond(body, 400)


def gateway_problem(
    status: int,
    detail: str,
    request_id: str,
    now: float,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The API gateway's 401/429, the same on every host."""
    body = {
        "title": _GATEWAY_TITLE[status],
        "detail": detail,
        "code": f"{request_id[:8]}--{request_id[8:20]}-[UK-{request_id[20:31]}]",
        "requestId": request_id,
        "origin": "s2s-api-auth-catalog",
        "status": status,
        "statusText": _STATUS_TEXT[status],
        "timestamp": utc(now),
    }
    return respond(body, status, media_type=PROBLEM_JSON, headers=headers)


_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def server_error(status: int, request_id: str) -> Response:
    """Injected 5xx as they come in practice: a JSON envelope, nginx HTML, a gateway problem."""
    if status == 502:
        return Response(_BAD_GATEWAY_HTML, 502, media_type="text/html")
    if status == 503:
        body = {
            "title": "service unavailable",
            "detail": "upstream is temporarily unavailable",
            "requestId": request_id,
            "origin": "s2s-api-auth-catalog",
            "status": 503,
            "statusText": "Service Unavailable",
        }
        return respond(body, 503, media_type=PROBLEM_JSON)
    body = {
        "data": None,
        "error": True,
        "errorText": "Внутренняя ошибка сервиса",
        "additionalErrors": None,
        "requestId": request_id,
    }
    return respond(body, 500)

"""Query and body parsing with WB's own 400s (FastAPI's 422 would give the sandbox away)."""

from typing import Any

import orjson
from starlette.datastructures import QueryParams
from starlette.requests import Request

from app.sandbox.errors import BadBody, FeedbacksError

# Go's strconv.ParseBool, which WB's Go services use for boolean query parameters.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_MAX_INT = 2**63 - 1


def bad_format(name: str) -> FeedbacksError:
    return FeedbacksError(f"Плохой формат {name}")


def optional_bool(params: QueryParams, name: str) -> bool | None:
    raw = params.get(name)
    if raw is None:
        return None
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise bad_format(name)


def required_bool(params: QueryParams, name: str) -> bool:
    value = optional_bool(params, name)
    if value is None:
        raise bad_format(name)
    return value


def optional_int(params: QueryParams, name: str, low: int = 0) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise bad_format(name) from None
    if not low <= value <= _MAX_INT:
        raise bad_format(name)
    return value


def required_int(params: QueryParams, name: str, low: int = 0) -> int:
    value = optional_int(params, name, low)
    if value is None:
        raise bad_format(name)
    return value


def capped(value: int, name: str, cap: int) -> int:
    if value > cap:
        raise FeedbacksError(f"Значение {name} не может быть больше {cap}")
    return value


def order_desc(params: QueryParams) -> bool:
    """`order`: dateAsc | dateDesc; WB does not document a default, the sandbox uses dateDesc."""
    raw = params.get("order")
    if raw is None or raw == "dateDesc":
        return True
    if raw == "dateAsc":
        return False
    raise bad_format("order")


async def json_object(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    if content_type and "json" not in content_type.lower():
        raise BadBody(f"unsupported Content-Type {content_type.split(';')[0]}")
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise BadBody("failed to decode JSON request.") from None
    if not isinstance(body, dict):
        raise BadBody("failed to decode JSON request.")
    return body


def answer_text(value: Any) -> str:
    if not isinstance(value, str) or not 2 <= len(value) <= 5000:
        raise FeedbacksError("Текст ответа должен содержать от 2 до 5000 символов")
    return value


def item_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise FeedbacksError("Неправильный id в запросе")
    return value

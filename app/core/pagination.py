"""Opaque keyset cursors: base64url JSON that clients pass back unchanged."""

import base64
import binascii
from typing import Any

import orjson

from app.core.errors import AppError


class InvalidCursor(AppError):
    status_code = 400
    code = "invalid_cursor"


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("the cursor is not one this API returned") from exc
    if not isinstance(values, list) or len(values) != arity:
        raise InvalidCursor("the cursor is not one this API returned")
    return values

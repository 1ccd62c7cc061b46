"""Opaque keyset cursors: base64url JSON that clients pass back unchanged.

A cursor comes back from the client, so it can be anything: each list decodes it against the
exact shape it writes (a pydantic `TypeAdapter` of a tuple), and anything else — garbage, a
cursor of another list or sort order, a forged value out of a column's range — is the same 422
`invalid_cursor`.
"""

import base64
from typing import Any, TypeVar

import orjson
from pydantic import TypeAdapter

from app.core.errors import AppError

T = TypeVar("T")

# Longer than any cursor we write (a few ids, a timestamp and a sort name).
MAX_CURSOR_LENGTH = 512


class InvalidCursor(AppError):
    status_code = 422
    code = "invalid_cursor"


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, shape: TypeAdapter[T]) -> T:
    invalid = InvalidCursor("the cursor is not one this list returned")
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return shape.validate_python(orjson.loads(raw))
    except ValueError:  # bad base64, bad JSON or the wrong shape: all ValueErrors
        raise invalid from None

"""Base models and field types shared by every domain's schemas."""

from collections.abc import Mapping
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

T = TypeVar("T")

# Postgres `bigint`: every id column and `nm_id`. A larger number from a client is a 422, not a
# driver error.
BIGINT_MAX = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=BIGINT_MAX)]


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Input(BaseModel):
    """Base of every request body and query model: its strings must be storable in Postgres
    `text`, which holds neither NUL nor lone UTF-16 surrogates (JSON's `\\ud800` decodes to one).
    Nested models inherit from it too, so each one checks its own fields."""

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any, info: ValidationInfo) -> Any:
        # A cursor is decoded by `decode_cursor`, whose one error (`invalid_cursor`) covers it.
        if info.field_name != "cursor" and not _storable(value):
            raise ValueError("text must not contain NUL characters or lone surrogates")
        return value


def _storable(value: Any) -> bool:
    if isinstance(value, str):
        return _encodable(value)
    if isinstance(value, SecretStr):
        return _storable(value.get_secret_value())
    if isinstance(value, Mapping):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return all(_storable(v) for v in value)
    return True


def _encodable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Page(BaseModel, Generic[T]):
    """Every list answers `{"items": [...], "next_cursor": ...}`; a null cursor is the last page."""

    items: list[T]
    next_cursor: str | None = None

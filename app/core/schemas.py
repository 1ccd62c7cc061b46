from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """Every list answers `{"items": [...], "next_cursor": ...}`; a null cursor is the last page."""

    items: list[T]
    next_cursor: str | None = None

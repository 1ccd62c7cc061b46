"""Wildberries payloads (docs/wb-api.md). Pages are parsed loosely (raw item dicts); each item is
validated on its own, so one malformed item is recorded and skipped instead of failing the page."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_TEXT_CHARS = 50_000  # far above any real review; larger payloads are treated as malformed


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class ProductDetails(_Item):
    nmId: int | None = None
    imtId: int | None = None
    productName: str | None = None
    supplierArticle: str | None = None
    supplierName: str | None = None
    brandName: str | None = None
    size: str | None = None


class FeedbackAnswer(_Item):
    text: str = ""
    state: str | None = None
    editable: bool | None = None


class QuestionAnswer(_Item):
    text: str = ""
    editable: bool | None = None
    createDate: datetime | None = None


def _bounded(value: str | None) -> str:
    if value is None:
        return ""
    if len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"text longer than {MAX_TEXT_CHARS} characters")
    return value


class Feedback(_Item):
    id: str = Field(min_length=1, max_length=128)
    text: str = ""
    pros: str = ""
    cons: str = ""
    productValuation: int = Field(ge=1, le=5)
    createdDate: datetime
    state: str | None = None
    answer: FeedbackAnswer | None = None
    productDetails: ProductDetails = Field(default_factory=ProductDetails)
    photoLinks: list[dict[str, Any]] | None = None
    video: dict[str, Any] | None = None
    wasViewed: bool | None = None
    userName: str | None = None
    orderStatus: str | None = None
    matchingSize: str | None = None
    bables: list[str] | None = None
    lastOrderShkId: int | None = None
    color: str | None = None
    subjectName: str | None = None
    parentFeedbackId: str | None = None
    childFeedbackId: str | None = None

    _texts = field_validator("text", "pros", "cons", mode="before")(_bounded)


class Question(_Item):
    id: str = Field(min_length=1, max_length=128)
    text: str = ""
    createdDate: datetime
    state: str | None = None
    answer: QuestionAnswer | None = None
    productDetails: ProductDetails = Field(default_factory=ProductDetails)
    wasViewed: bool | None = None
    isWarned: bool | None = None

    _texts = field_validator("text", mode="before")(_bounded)


class GoodCard(_Item):
    nmID: int | None = None
    price: int | None = None
    priceCurrency: str | None = None
    rid: str | None = None
    size: str | None = None


class Chat(_Item):
    chatID: str = Field(min_length=1, max_length=128)
    replySign: str | None = None
    clientName: str | None = None
    goodCard: GoodCard | None = None


class MessageAttachments(_Item):
    goodCard: GoodCard | None = None
    files: list[dict[str, Any]] | None = None
    images: list[dict[str, Any]] | None = None


class EventMessage(_Item):
    text: str = ""
    attachments: MessageAttachments | None = None

    _texts = field_validator("text", mode="before")(_bounded)


class ChatEvent(_Item):
    chatID: str = Field(min_length=1, max_length=128)
    eventID: str = Field(min_length=1, max_length=128)
    eventType: str | None = None
    isNewChat: bool = False
    message: EventMessage | None = None
    source: str | None = None
    addTimestamp: int = Field(strict=True)  # Unix ms; a string here is a broken event
    replySign: str | None = None
    sender: Literal["client", "seller", "wb"] | str = "client"
    clientName: str | None = None

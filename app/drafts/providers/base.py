"""What every draft provider shares: the request, the result, the protocol (product.md §4).

Pure code, no database access. The providers import this module and the package's
`provider_for` imports the providers: nothing imports in a circle.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, get_args

from app.drafts.guardrails import Channel as Channel
from app.drafts.guardrails import max_length
from app.drafts.providers.phrases import NOT_A_NAME

# The marketplace's limit of a reply text per channel (the guardrails' limits).
MAX_LENGTH: dict[str, int] = {channel: max_length(channel) for channel in get_args(Channel)}


@dataclass(frozen=True, slots=True)
class PreviousReply:
    """A seller's earlier reply on the same product."""

    interaction_id: int
    channel: str
    text: str
    rating: int | None


@dataclass(frozen=True, slots=True)
class DraftRequest:
    channel: Channel
    text: str | None  # the customer's text (chats: the last incoming messages joined)
    pros: str | None
    cons: str | None
    rating: int | None
    intent: str | None
    customer_name: str | None
    product_name: str | None
    previous_replies: Sequence[PreviousReply]  # newest first, up to ~5
    top_intents: Sequence[tuple[str, int]]  # the product's typical intents with counts


@dataclass(frozen=True, slots=True)
class DraftResult:
    text: str
    provider: str  # "offline" | "openai_compat"
    model: str | None
    # What the draft was grounded on, e.g. {"kind": "previous_reply", "interaction_id": 5, ...}.
    sources: list[dict[str, object]]
    fallback_reason: str | None = None  # set when a remote provider failed and offline answered


class DraftProvider(Protocol):
    name: str

    async def draft(self, request: DraftRequest) -> DraftResult: ...


_NAME = re.compile(r"[A-Za-zА-Яа-яЁё]+(?:-[A-Za-zА-Яа-яЁё]+)?")


def first_name(customer_name: str | None) -> str | None:
    """The first word of the marketplace's user name when it looks like a first name.

    "анна" → "Анна", "Анна К." → "Анна"; placeholders ("Покупатель"), initials and nicknames
    with digits give None (the caller then greets neutrally).
    """
    if not customer_name:
        return None
    word = customer_name.strip().split(maxsplit=1)[0] if customer_name.strip() else ""
    if not _NAME.fullmatch(word) or not 2 <= len(word) <= 30 or word.lower() in NOT_A_NAME:
        return None
    if word.isupper() and len(word) <= 3:  # initials or an abbreviation, not a name
        return None
    return "-".join(part[:1].upper() + part[1:].lower() for part in word.split("-"))

"""The draft provider interface (product.md §4): pure code, no database access.

The caller (drafts service) loads the interaction, the seller's previous replies on the same
product and the product's typical intents, builds a `DraftRequest` and asks the provider chosen
in the seller's settings (`provider_for`). Every provider answers with a `DraftResult` that says
which context it used (`sources`) and, for a remote provider that failed, why the offline
provider answered instead (`fallback_reason`). Providers never raise for a bad remote service.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, get_args

from app.core.egress import EgressPolicy
from app.drafts.guardrails import Channel as Channel
from app.drafts.guardrails import max_length

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


# Marketplace placeholders that are not a person's name.
_NOT_A_NAME = frozenset(
    {
        "покупатель",
        "покупательница",
        "пользователь",
        "клиент",
        "аноним",
        "анонимно",
        "гость",
        "user",
        "buyer",
        "customer",
        "anonymous",
    }
)
_NAME = re.compile(r"[A-Za-zА-Яа-яЁё]+(?:-[A-Za-zА-Яа-яЁё]+)?")


def first_name(customer_name: str | None) -> str | None:
    """The first word of the marketplace's user name when it looks like a first name.

    "анна" → "Анна", "Анна К." → "Анна"; placeholders ("Покупатель"), initials and nicknames
    with digits give None (the caller then greets neutrally).
    """
    if not customer_name:
        return None
    word = customer_name.strip().split(maxsplit=1)[0] if customer_name.strip() else ""
    if not _NAME.fullmatch(word) or not 2 <= len(word) <= 30 or word.lower() in _NOT_A_NAME:
        return None
    if word.isupper() and len(word) <= 3:  # initials or an abbreviation, not a name
        return None
    return "-".join(part[:1].upper() + part[1:].lower() for part in word.split("-"))


def provider_for(
    kind: str,
    *,
    model: str | None,
    base_url: str | None,
    api_key: str | None,
    policy: EgressPolicy,
    timeout: float = 10.0,
) -> DraftProvider:
    """The provider named in the seller's settings (`draft_provider`).

    `api_key` is the decrypted key; `policy` says where a remote provider may be called. An
    `openai_compat` setting without a base URL or a model yields a provider that always falls
    back to offline and says why; an unknown kind is a programming error (the settings schema
    only allows the two names).
    """
    # Imported here: both modules import the types above.
    from app.drafts.offline import OfflineProvider
    from app.drafts.openai_compat import MisconfiguredProvider, OpenAICompatProvider

    if kind == "offline":
        return OfflineProvider()
    if kind == "openai_compat":
        if not base_url or not model:
            unset = (
                name for name, value in (("base URL", base_url), ("model", model)) if not value
            )
            return MisconfiguredProvider(
                f"openai_compat not configured: no {' and no '.join(unset)}"
            )
        return OpenAICompatProvider(base_url, model, api_key, policy, timeout=timeout)
    raise ValueError(f"unknown draft provider {kind!r}")

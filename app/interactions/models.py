from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from app.connectors.base import Channel, ListChannel
from app.core.base import Base, IdMixin, TimestampMixin, enum_check

# An interaction's status and priority (the API's schemas show these types too).
Status = Literal["open", "pending_reply", "responded", "closed"]
PriorityLevel = Literal["urgent", "high", "normal", "low"]  # most urgent first

MARKETPLACES = ("wildberries", "ozon")
CHANNELS: tuple[Channel, ...] = get_args(Channel)
STATUSES: tuple[Status, ...] = get_args(Status)
PRIORITIES: tuple[PriorityLevel, ...] = get_args(PriorityLevel)
SOURCES = ("wb_api", "ozon_api", "demo", "fallback")
DIRECTIONS = ("in", "out")
# Not answered on the marketplace yet (pending_reply: our answer is sent, not yet seen there).
OPEN_STATUSES: tuple[Status, ...] = ("open", "pending_reply")

# Inbox order "priority + SLA": urgent first, then the nearest due time (no due time last).
PRIORITY_RANK = (
    "CASE priority "
    + " ".join(f"WHEN '{level}' THEN {rank}" for rank, level in enumerate(PRIORITIES[:-1]))
    + f" ELSE {len(PRIORITIES) - 1} END"
)
SLA_SORT = "coalesce(sla_due_at, 'infinity'::timestamptz)"
# Items that carry the seller's answer (a chat's answers are its messages): the predicate of
# ix_interactions_seller_nm_answered. `last_replies_query` states the same condition, constants
# inline, so the planner can use it.
ANSWERED_CHANNELS: tuple[ListChannel, ...] = get_args(ListChannel)
ANSWERED_STATUSES: tuple[Status, ...] = ("responded", "pending_reply")
ANSWERED = (
    f"{enum_check('channel', ANSWERED_CHANNELS)} AND {enum_check('status', ANSWERED_STATUSES)}"
)

# Russian full-text document: text, pros, cons, product name and the customer's name.
SEARCH_DOCUMENT = (
    "to_tsvector('russian'::regconfig, "
    "coalesce(text, '') || ' ' || coalesce(pros, '') || ' ' || coalesce(cons, '') || ' ' || "
    "coalesce(product_name, '') || ' ' || coalesce(customer_name, ''))"
)
# The document plus the seller's hour buckets (upper-case lexemes no text or query can produce):
# the relevance window reads the newest hours first through them (app/interactions/search.py).
SEARCH_VECTOR = f"{SEARCH_DOCUMENT} || interaction_time_lexemes(seller_id, occurred_at)"


class Interaction(IdMixin, TimestampMixin, Base):
    """One customer contact, whatever the channel (product.md §1)."""

    __tablename__ = "interactions"
    __table_args__ = (
        UniqueConstraint("seller_id", "marketplace", "channel", "external_id"),
        CheckConstraint(enum_check("marketplace", MARKETPLACES), name="marketplace"),
        CheckConstraint(enum_check("channel", CHANNELS), name="channel"),
        CheckConstraint(enum_check("status", STATUSES), name="status"),
        CheckConstraint(enum_check("priority", PRIORITIES), name="priority"),
        CheckConstraint(enum_check("source", SOURCES), name="source"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating"),
        # Inbox default order and "newest" order, both keyset-paginated on id.
        Index("ix_interactions_seller_occurred", "seller_id", "occurred_at", "id"),
        Index("ix_interactions_seller_status_sla", "seller_id", "status", "sla_due_at"),
        Index("ix_interactions_seller_channel_occurred", "seller_id", "channel", "occurred_at"),
        Index("ix_interactions_seller_nm", "seller_id", "nm_id", "occurred_at"),
        # The card's product context: each channel's newest items, and the newest thousand's
        # intents read from the index alone (app/interactions/repository.py, `top_intents_query`).
        Index(
            "ix_interactions_seller_nm_channel",
            "seller_id", "nm_id", "channel", "occurred_at",
            postgresql_include=["intent", "rating"],
        ),
        # The seller's last answers on a product, past the newest (mostly unanswered) items.
        Index(
            "ix_interactions_seller_nm_answered",
            "seller_id", "nm_id", "occurred_at",
            postgresql_where=sql_text(ANSWERED),
        ),
        Index("ix_interactions_seller_customer", "seller_id", "customer_id"),
        Index("ix_interactions_search", "search_vector", postgresql_using="gin"),
        # The seller's words per 16-hour block and its word pairs (app/interactions/search.py).
        Index(
            "ix_interactions_search_blocks",
            sql_text("interaction_block_lexemes(seller_id, occurred_at, search_vector)"),
            postgresql_using="gin",
        ),
        Index(
            "ix_interactions_seller_priority_sla",
            "seller_id", "priority_rank", "sla_sort_at", "id",
        ),
        Index(
            "ix_interactions_seller_status_priority_sla",
            "seller_id", "status", "priority_rank", "sla_sort_at", "id",
        ),
        Index("ix_interactions_seller_assignee", "seller_id", "assignee_id"),
        Index(
            "ix_interactions_seller_order",
            "seller_id", "order_id",
            postgresql_where=sql_text("order_id IS NOT NULL"),
        ),
    )  # fmt: skip

    seller_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sellers.id", ondelete="CASCADE"))
    marketplace: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    thread_key: Mapped[str | None] = mapped_column(String(128))
    customer_id: Mapped[str | None] = mapped_column(String(128))
    order_id: Mapped[str | None] = mapped_column(String(128))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    nm_id: Mapped[int | None] = mapped_column(BigInteger)
    product_article: Mapped[str | None] = mapped_column(String(128))
    product_name: Mapped[str | None] = mapped_column(String(500))
    text: Mapped[str | None] = mapped_column(Text)
    pros: Mapped[str | None] = mapped_column(Text)
    cons: Mapped[str | None] = mapped_column(Text)
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    photos_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    priority: Mapped[str] = mapped_column(String(16), default="normal", server_default="normal")
    priority_reason: Mapped[str | None] = mapped_column(String(200))
    intent: Mapped[str | None] = mapped_column(String(32))
    needs_response: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    is_read: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    assignee_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL")
    )
    sla_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_response_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Until when a reply we sent may be in marketplace moderation (stays pending_reply).
    reply_pending_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(16))
    extra: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    search_vector: Mapped[str] = mapped_column(
        TSVECTOR, Computed(SEARCH_VECTOR, persisted=True), deferred=True
    )
    priority_rank: Mapped[int] = mapped_column(
        SmallInteger, Computed(PRIORITY_RANK, persisted=True)
    )
    sla_sort_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), Computed(SLA_SORT, persisted=True)
    )


class ChatMessage(IdMixin, Base):
    """Every message of a buyer chat, in and out."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        UniqueConstraint("seller_id", "external_id"),
        CheckConstraint(enum_check("direction", DIRECTIONS), name="direction"),
        Index("ix_chat_messages_interaction_sent", "interaction_id", "sent_at"),
    )

    seller_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sellers.id", ondelete="CASCADE"))
    interaction_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("interactions.id", ondelete="CASCADE")
    )
    external_id: Mapped[str] = mapped_column(String(128))
    direction: Mapped[str] = mapped_column(String(8))
    sender_name: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[Any]] = mapped_column(JSONB, default=list, server_default="[]")
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class InteractionEvent(IdMixin, Base):
    """Audit trail: draft generated, reply queued/sent/failed, status changed, linked…"""

    __tablename__ = "interaction_events"
    __table_args__ = (
        Index("ix_interaction_events_interaction_created", "interaction_id", "created_at"),
        Index("ix_interaction_events_seller_kind_created", "seller_id", "kind", "created_at"),
    )

    seller_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sellers.id", ondelete="CASCADE"))
    interaction_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("interactions.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(48))
    actor_user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL")
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.base import Base, IdMixin, TimestampMixin, enum_check

# queued → sending → sent | failed (retried by the sweeper) → dead (gave up)
STATES = ("queued", "sending", "sent", "failed", "dead")
ACTIVE_STATES = ("queued", "sending", "failed")
WAITING_STATES = ("queued", "failed")  # waiting for their next attempt
# answer: a review's or question's answer, or a chat message; edit: a review's or question's
# answer already sent, changed (WB allows one edit).
Action = Literal["answer", "edit"]
ACTIONS: tuple[Action, ...] = get_args(Action)
QUALITIES = ("draft_accepted", "draft_edited", "reply_manual")


class OutboundReply(IdMixin, TimestampMixin, Base):
    """The dispatch outbox (product.md §5): written in the API's transaction, sent by a task."""

    __tablename__ = "outbound_replies"
    __table_args__ = (
        CheckConstraint(enum_check("state", STATES), name="state"),
        CheckConstraint(enum_check("action", ACTIONS), name="action"),
        CheckConstraint(f"quality IS NULL OR {enum_check('quality', QUALITIES)}", name="quality"),
        UniqueConstraint("seller_id", "idempotency_key"),
        Index("ix_outbound_replies_interaction", "interaction_id", "id"),
        # What the sweeper looks at: everything not final, by when it is next due.
        Index(
            "ix_outbound_replies_due",
            "next_attempt_at",
            postgresql_where=sql_text(enum_check("state", ACTIVE_STATES)),
        ),
        # A review or question is answered once: one live answer per item (chats take many).
        Index(
            "uq_outbound_replies_one_answer",
            "interaction_id",
            "action",
            unique=True,
            postgresql_where=sql_text("channel <> 'chat' AND state <> 'dead'"),
        ),
    )

    seller_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sellers.id", ondelete="CASCADE"))
    interaction_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("interactions.id", ondelete="CASCADE")
    )
    channel: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(8), default="answer")
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(8), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sending_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Since when an attempt may have reached the marketplace without our knowing (a timeout or
    # 5xx after sending, a worker lost mid-send): later attempts look before they send.
    uncertain_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # How the send was confirmed: "sent" (the marketplace accepted our call) or "found" (a retry
    # found our text already there and did not send again).
    confirmed_by: Mapped[str | None] = mapped_column(String(8))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    draft_text: Mapped[str | None] = mapped_column(Text)  # the last draft when it was queued
    quality: Mapped[str | None] = mapped_column(String(16))
    created_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL")
    )

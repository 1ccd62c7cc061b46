"""The tables of linking: the stored links (`LinkCandidate`) and the backlog.

The link backlog holds interactions whose cross-channel links are still to be computed. Rows are
written in the transaction that stores the interactions (a sync page, a demo seed, an API
request) and deleted in the transaction that writes their links, so work that was committed is
never lost, whichever process dies in between. `interaction_id` NULL stands for every
interaction of the seller (a full rebuild). There is no foreign key to `interactions`: an id
whose interaction is gone matches nothing when drained, and inserting needs no lock on the
interaction rows that an operator may hold.
"""

from typing import Any, Literal, get_args

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Numeric,
    String,
    Table,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.base import Base, IdMixin, TimestampMixin, enum_check

link_backlog = Table(
    "link_backlog",
    Base.metadata,
    Column("seller_id", BigInteger, ForeignKey("sellers.id", ondelete="CASCADE"), nullable=False),
    Column("interaction_id", BigInteger, nullable=True),
    Column("queued_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    # One row per interaction, and one "all of them" row: NULLs count as equal.
    UniqueConstraint("seller_id", "interaction_id", postgresql_nulls_not_distinct=True),
)


Level = Literal["A", "B", "C"]
Band = Literal["high", "medium", "low"]
LINK_LEVELS: tuple[Level, ...] = get_args(Level)
LINK_BANDS: tuple[Band, ...] = get_args(Band)


class LinkCandidate(IdMixin, TimestampMixin, Base):
    """A possible link between two interactions of one seller, stored in both directions.

    Level B: the same customer or order id (deterministic). Level C: weighted signals (product,
    time, intent, normalised name, order references): probabilistic, assist-only. Level A (the
    same product within the window) is a query over `interactions`, not stored pairwise.
    """

    __tablename__ = "link_candidates"
    __table_args__ = (
        UniqueConstraint("source_id", "target_id"),
        CheckConstraint(enum_check("level", LINK_LEVELS), name="level"),
        CheckConstraint(enum_check("band", LINK_BANDS), name="band"),
        CheckConstraint("confidence BETWEEN 0 AND 1", name="confidence"),
        # Policy in the schema: a probabilistic (level C) link is never deterministic.
        CheckConstraint("level <> 'C' OR NOT deterministic", name="c_is_probabilistic"),
        Index("ix_link_candidates_seller_source", "seller_id", "source_id", "confidence"),
    )

    seller_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sellers.id", ondelete="CASCADE"))
    source_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("interactions.id", ondelete="CASCADE")
    )
    target_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("interactions.id", ondelete="CASCADE"), index=True
    )
    level: Mapped[str] = mapped_column(String(1))
    deterministic: Mapped[bool] = mapped_column(Boolean)
    confidence: Mapped[float] = mapped_column(Numeric(4, 3, asdecimal=False))
    band: Mapped[str] = mapped_column(String(8))
    match_reason: Mapped[str] = mapped_column(String(64))
    # Each signal with its weight, e.g. {"same_product_7d": 0.45, "within_24h": 0.2}.
    signals: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")

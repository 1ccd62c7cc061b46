"""The link backlog: interactions whose cross-channel links are still to be computed.

Rows are written in the transaction that stores the interactions (a sync page, a demo seed, an
API request) and deleted in the transaction that writes their links, so work that was committed
is never lost, whichever process dies in between. `interaction_id` NULL stands for every
interaction of the seller (a full rebuild). There is no foreign key to `interactions`: an id
whose interaction is gone matches nothing when drained, and inserting needs no lock on the
interaction rows that an operator may hold.
"""

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Table, UniqueConstraint, func

from app.core.base import Base

link_backlog = Table(
    "link_backlog",
    Base.metadata,
    Column("seller_id", BigInteger, ForeignKey("sellers.id", ondelete="CASCADE"), nullable=False),
    Column("interaction_id", BigInteger, nullable=True),
    Column("queued_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    # One row per interaction, and one "all of them" row: NULLs count as equal.
    UniqueConstraint("seller_id", "interaction_id", postgresql_nulls_not_distinct=True),
)

"""Every table, imported in one place so Alembic and the tests see the whole metadata."""

from app.auth.models import ApiToken, User
from app.core.base import Base
from app.dispatch.models import OutboundReply
from app.drafts.models import Draft
from app.interactions.models import ChatMessage, Interaction, InteractionEvent
from app.links.models import LinkCandidate, link_backlog
from app.sellers.models import AccountEvent, MarketplaceAccount, Seller, SellerSettings
from app.sync.models import SyncCursor, SyncError, SyncGap, SyncRun

__all__ = [
    "AccountEvent",
    "ApiToken",
    "Base",
    "ChatMessage",
    "Draft",
    "Interaction",
    "InteractionEvent",
    "LinkCandidate",
    "MarketplaceAccount",
    "OutboundReply",
    "Seller",
    "SellerSettings",
    "SyncCursor",
    "SyncError",
    "SyncGap",
    "SyncRun",
    "User",
    "link_backlog",
]

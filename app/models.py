"""Every table, imported in one place so Alembic and the tests see the whole metadata."""

from app.auth.models import ApiToken, User
from app.core.base import Base
from app.dispatch.models import OutboundReply
from app.drafts.models import Draft
from app.interactions.models import ChatMessage, Interaction, InteractionEvent, LinkCandidate
from app.links.models import link_backlog
from app.sellers.models import MarketplaceAccount, Seller, SellerSettings
from app.sync.models import SyncCursor, SyncError, SyncRun

__all__ = [
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
    "SyncRun",
    "User",
    "link_backlog",
]

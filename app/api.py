"""The /api/v1 router: every domain router mounted in one place."""

from fastapi import APIRouter

from app.auth.router import router as auth_router
from app.cards.router import router as cards_router
from app.demo.router import router as demo_router
from app.dispatch.router import router as dispatch_router
from app.drafts.router import router as drafts_router
from app.interactions.router import router as interactions_router
from app.links.router import router as links_router
from app.sellers.router import router as sellers_router
from app.sync.router import router as sync_router

api_router = APIRouter(prefix="/api/v1")
# Routes are matched in order: the inbox (read most) first.
api_router.include_router(interactions_router)
api_router.include_router(cards_router)
api_router.include_router(auth_router)
api_router.include_router(sellers_router)
api_router.include_router(sync_router)
api_router.include_router(links_router)
api_router.include_router(drafts_router)
api_router.include_router(dispatch_router)
api_router.include_router(demo_router)

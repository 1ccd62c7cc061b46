from fastapi import APIRouter

from app.auth.dependencies import CurrentPrincipal
from app.core.deps import SessionDep
from app.core.errors import ERROR_RESPONSES
from app.demo import service
from app.demo.schemas import DemoSeedRead

router = APIRouter(prefix="/demo", tags=["demo"], responses=ERROR_RESPONSES)


@router.post("/seed", response_model=DemoSeedRead)
async def seed_demo(principal: CurrentPrincipal, session: SessionDep) -> DemoSeedRead:
    """Give the caller's seller a dozen demo interactions (`source="demo"`): reviews 1–5★,
    questions, buyer chats with messages. Idempotent: a second call creates nothing."""
    result = await service.seed(session, principal.seller_id)
    return DemoSeedRead(created=result.created, existing=result.existing, items=result.items)

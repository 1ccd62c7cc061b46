from fastapi import APIRouter, Request

from app.auth.dependencies import CurrentPrincipal
from app.core.deps import EgressDep, SessionDep
from app.core.errors import ERROR_RESPONSES
from app.core.schemas import Id
from app.drafts import service
from app.drafts.schemas import DraftRead

router = APIRouter(tags=["drafts"], responses=ERROR_RESPONSES)


@router.post("/interactions/{interaction_id}/draft", response_model=DraftRead)
async def draft(
    interaction_id: Id,
    principal: CurrentPrincipal,
    session: SessionDep,
    request: Request,
    policy: EgressDep,
) -> DraftRead:
    """Draft a reply with the seller's provider (offline by default; a remote provider that fails
    or that the outbound policy refuses falls back to offline and says why in `fallback_reason`).
    Kept as the last draft."""
    row = await service.generate(
        session, principal, interaction_id, request.app.state.secret_box, policy
    )
    return DraftRead.model_validate(row)

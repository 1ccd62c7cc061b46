from fastapi import APIRouter, Request, status

from app.auth.dependencies import CurrentPrincipal
from app.core.deps import SessionDep
from app.core.errors import ERROR_RESPONSES
from app.core.schemas import Page
from app.core.security import SecretBox
from app.sellers import repository, service
from app.sellers.schemas import (
    MarketplaceAccountCreate,
    MarketplaceAccountRead,
    MarketplaceTokenRotate,
    SellerRead,
)

router = APIRouter(tags=["sellers"], responses=ERROR_RESPONSES)


def _box(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.secret_box
    return box


@router.get("/seller", response_model=SellerRead)
async def read_seller(principal: CurrentPrincipal, session: SessionDep) -> SellerRead:
    return SellerRead.model_validate(await service.get_seller(session, principal.seller_id))


@router.get("/marketplace-accounts", response_model=Page[MarketplaceAccountRead])
async def list_accounts(
    principal: CurrentPrincipal, session: SessionDep
) -> Page[MarketplaceAccountRead]:
    rows = await repository.list_accounts(session, seller_id=principal.seller_id)
    return Page[MarketplaceAccountRead](
        items=[MarketplaceAccountRead.model_validate(r) for r in rows]
    )


@router.post(
    "/marketplace-accounts",
    response_model=MarketplaceAccountRead,
    status_code=status.HTTP_201_CREATED,
)
async def connect_account(
    body: MarketplaceAccountCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    request: Request,
) -> MarketplaceAccountRead:
    account = await service.connect_account(
        session,
        _box(request),
        seller_id=principal.seller_id,
        marketplace=body.marketplace,
        name=body.name,
        token=body.token.get_secret_value(),
    )
    return MarketplaceAccountRead.model_validate(account)


@router.get("/marketplace-accounts/{account_id}", response_model=MarketplaceAccountRead)
async def read_account(
    account_id: int, principal: CurrentPrincipal, session: SessionDep
) -> MarketplaceAccountRead:
    account = await service.get_account(session, principal.seller_id, account_id)
    return MarketplaceAccountRead.model_validate(account)


@router.put("/marketplace-accounts/{account_id}/token", response_model=MarketplaceAccountRead)
async def rotate_token(
    account_id: int,
    body: MarketplaceTokenRotate,
    principal: CurrentPrincipal,
    session: SessionDep,
    request: Request,
) -> MarketplaceAccountRead:
    account = await service.rotate_token(
        session,
        _box(request),
        seller_id=principal.seller_id,
        account_id=account_id,
        token=body.token.get_secret_value(),
    )
    return MarketplaceAccountRead.model_validate(account)


@router.delete("/marketplace-accounts/{account_id}", status_code=status.HTTP_204_NO_CONTENT)
async def disconnect_account(
    account_id: int, principal: CurrentPrincipal, session: SessionDep
) -> None:
    await service.disconnect_account(session, principal.seller_id, account_id)

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, status

from app.auth.dependencies import CurrentPrincipal
from app.core.deps import EgressDep, SessionDep
from app.core.errors import ERROR_RESPONSES, ErrorEnvelope
from app.core.schemas import Id, Page
from app.sellers import reauth, service
from app.sellers.dependencies import SecretBoxDep, TokenCheckerDep
from app.sellers.schemas import (
    AccountStateRead,
    MarketplaceAccountCheck,
    MarketplaceAccountCreate,
    MarketplaceAccountRead,
    MarketplaceTokenRotate,
    SellerRead,
    SellerSettingsRead,
    SellerSettingsUpdate,
)

router = APIRouter(tags=["sellers"], responses=ERROR_RESPONSES)

_CHECK_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorEnvelope,
        "description": "Invalid request, or `marketplace_token_rejected` (the marketplace "
        "refused the token) or `marketplace_not_supported`; nothing was stored",
    },
    502: {
        "model": ErrorEnvelope,
        "description": "`marketplace_unreachable`: the token could not be checked",
    },
    503: {
        "model": ErrorEnvelope,
        "description": "`marketplace_rate_limited`: the marketplace's check is rate limited",
    },
}


@router.get("/seller", response_model=SellerRead)
async def read_seller(principal: CurrentPrincipal, session: SessionDep) -> SellerRead:
    """The seller, its sync state and the state of its accounts (`needs_reauth` says why)."""
    seller, accounts = await service.seller_with_accounts(session, principal.seller_id)
    return SellerRead.model_validate(seller).model_copy(
        update={"accounts": [AccountStateRead.model_validate(a) for a in accounts]}
    )


@router.get("/settings", response_model=SellerSettingsRead)
async def read_settings(principal: CurrentPrincipal, session: SessionDep) -> SellerSettingsRead:
    row = await service.get_settings(session, principal.seller_id)
    return SellerSettingsRead.from_row(row)


@router.patch("/settings", response_model=SellerSettingsRead)
async def update_settings(
    body: SellerSettingsUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    box: SecretBoxDep,
    policy: EgressDep,
) -> SellerSettingsRead:
    """Partial update: only the fields sent change (merge rules in the request schema).
    A `draft_base_url` that the outbound request policy refuses (not https in production, or
    not public addresses only) is 422 `refused_by_policy`."""
    row = await service.update_settings(session, box, policy, principal.seller_id, body)
    return SellerSettingsRead.from_row(row)


@router.get("/marketplace-accounts", response_model=Page[MarketplaceAccountRead])
async def list_accounts(
    principal: CurrentPrincipal, session: SessionDep
) -> Page[MarketplaceAccountRead]:
    rows = await service.list_accounts(session, principal.seller_id)
    return Page[MarketplaceAccountRead](
        items=[MarketplaceAccountRead.model_validate(r) for r in rows]
    )


@router.post(
    "/marketplace-accounts",
    response_model=MarketplaceAccountRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        409: {"model": ErrorEnvelope, "description": "Already connected"},
        **_CHECK_RESPONSES,
    },
)
async def connect_account(
    body: MarketplaceAccountCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    box: SecretBoxDep,
    checker: TokenCheckerDep,
) -> MarketplaceAccountRead:
    """Connect a marketplace account; the token is checked with the marketplace first."""
    account = await service.connect_account(
        session,
        box,
        seller_id=principal.seller_id,
        marketplace=body.marketplace,
        name=body.name,
        token=body.token.get_secret_value(),
        checker=checker,
    )
    return MarketplaceAccountRead.model_validate(account)


@router.get("/marketplace-accounts/{account_id}", response_model=MarketplaceAccountRead)
async def read_account(
    account_id: Id, principal: CurrentPrincipal, session: SessionDep
) -> MarketplaceAccountRead:
    account = await service.get_account(session, principal.seller_id, account_id)
    return MarketplaceAccountRead.model_validate(account)


@router.put(
    "/marketplace-accounts/{account_id}/token",
    response_model=MarketplaceAccountRead,
    responses=_CHECK_RESPONSES,
)
async def rotate_token(
    account_id: Id,
    body: MarketplaceTokenRotate,
    principal: CurrentPrincipal,
    session: SessionDep,
    box: SecretBoxDep,
    checker: TokenCheckerDep,
) -> MarketplaceAccountRead:
    """Replace the token once the marketplace accepts the new one (else the old one stays).
    An account that needed re-authorisation is active again: waiting replies go out and a sync
    of every channel is queued."""
    account = await reauth.rotate_token(
        session,
        box,
        checker,
        seller_id=principal.seller_id,
        account_id=account_id,
        token=body.token.get_secret_value(),
    )
    return MarketplaceAccountRead.model_validate(account)


@router.post(
    "/marketplace-accounts/{account_id}/check",
    response_model=MarketplaceAccountCheck,
    responses=_CHECK_RESPONSES,
)
async def check_account(
    account_id: Id,
    principal: CurrentPrincipal,
    session: SessionDep,
    box: SecretBoxDep,
    checker: TokenCheckerDep,
) -> MarketplaceAccountCheck:
    """Re-check the stored token: 200 with `valid` and the account (`needs_reauth` with the
    reason when the marketplace refused it; active again, with replies and a sync resumed,
    when it works); 502/503 when it could not be asked."""
    account, valid = await reauth.check_account(
        session, box, checker, seller_id=principal.seller_id, account_id=account_id
    )
    return MarketplaceAccountCheck(
        valid=valid,
        checked_at=datetime.now(UTC),
        account=MarketplaceAccountRead.model_validate(account),
    )


@router.delete("/marketplace-accounts/{account_id}", status_code=status.HTTP_204_NO_CONTENT)
async def disconnect_account(
    account_id: Id, principal: CurrentPrincipal, session: SessionDep
) -> None:
    await service.disconnect_account(session, principal.seller_id, account_id)

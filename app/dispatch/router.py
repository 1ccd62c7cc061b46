from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from app.auth.dependencies import CurrentPrincipal
from app.core.deps import SessionDep
from app.core.errors import ERROR_RESPONSES, AppError, ErrorBody, too_many_items
from app.core.schemas import Id, Page
from app.dispatch import service
from app.dispatch.schemas import (
    IDEMPOTENCY_KEY_PATTERN,
    MAX_BULK_REPLIES,
    BulkReplyRequest,
    BulkReplyResponse,
    BulkReplyResult,
    ReplyCreate,
    ReplyRead,
)

router = APIRouter(tags=["replies"], responses=ERROR_RESPONSES)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Same key and body: the same reply, never a second send; another body: 409.",
    ),
]


@router.post(
    "/interactions/{interaction_id}/reply",
    response_model=ReplyRead,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": ReplyRead, "description": "replayed: the reply this key created"}},
)
async def reply(
    interaction_id: Id,
    body: ReplyCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ReplyRead:
    """Queue a reply (guardrails first: 422 with the violations of a blocking rule). The
    interaction becomes `pending_reply` in the same transaction; a worker sends it."""
    row, created = await service.queue_reply(
        session, principal, interaction_id, body, idempotency_key
    )
    await session.flush()
    if not created:
        response.status_code = status.HTTP_200_OK
    return ReplyRead.model_validate(row)


@router.post(
    "/replies/bulk",
    response_model=BulkReplyResponse,
    responses=too_many_items(f"more than {MAX_BULK_REPLIES} items"),
)
async def bulk_reply(
    body: BulkReplyRequest, principal: CurrentPrincipal, session: SessionDep
) -> BulkReplyResponse:
    """Queue many replies; each item succeeds or fails on its own (`reply` or `error`)."""
    await service.lock_for_bulk(session, principal, [item.interaction_id for item in body.items])
    results = []
    for item in body.items:
        try:
            async with session.begin_nested():
                row, _ = await service.queue_reply(
                    session, principal, item.interaction_id, item, item.idempotency_key
                )
                await session.flush()
            read = ReplyRead.model_validate(row)
            results.append(BulkReplyResult(interaction_id=item.interaction_id, reply=read))
        except AppError as exc:
            error = ErrorBody(code=exc.code, message=exc.message, details=exc.details)
            results.append(BulkReplyResult(interaction_id=item.interaction_id, error=error))
    return BulkReplyResponse(items=results)


@router.get("/interactions/{interaction_id}/replies", response_model=Page[ReplyRead])
async def list_replies(
    interaction_id: Id, principal: CurrentPrincipal, session: SessionDep
) -> Page[ReplyRead]:
    """The outbox entries of an interaction, newest first."""
    rows = await service.list_replies(session, principal, interaction_id)
    return Page[ReplyRead](items=[ReplyRead.model_validate(r) for r in rows], next_cursor=None)


@router.get("/replies/{reply_id}", response_model=ReplyRead)
async def read_reply(reply_id: Id, principal: CurrentPrincipal, session: SessionDep) -> ReplyRead:
    """One outbox entry: state, attempts, last error, quality."""
    return ReplyRead.model_validate(await service.get_reply(session, principal, reply_id))

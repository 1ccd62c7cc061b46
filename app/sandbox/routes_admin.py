"""Our own control API under /_sandbox (no auth): sellers, clock, limits, faults, observations."""

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.sandbox.config import FaultSettings, RateLimits, SellerSettingsUpdate, SellerSpec
from app.sandbox.errors import respond
from app.sandbox.faults import EVENT_FAULTS, REVIEW_FAULTS
from app.sandbox.seller import Seller
from app.sandbox.state import Sandbox

router = APIRouter(prefix="/_sandbox", tags=["sandbox admin"])

IDS_RETURNED_MAX = 1000


class NewItems(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["review", "question", "chat"]
    count: int = Field(ge=1, le=1_000_000)
    existing: bool = Field(default=False, description="chat only: new messages in existing chats")


class ClockAdvance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    advance_seconds: float = Field(ge=0)


def _sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


def _seller(request: Request, seller_id: str) -> Seller:
    seller = _sandbox(request).sellers.get(seller_id)
    if seller is None:
        raise HTTPException(404, f"no sandbox seller {seller_id}")
    seller.tick(_sandbox(request).clock.now())
    return seller


def _seller_view(sandbox: Sandbox, seller: Seller) -> dict[str, Any]:
    now = sandbox.clock.now()
    return {
        "seller_id": seller.id,
        "name": seller.name,
        "token": seller.token,
        "revoked": seller.revoked,
        "created_at": seller.created_at,
        "counts": seller.counts(now),
        "settings": seller.settings(),
        "rate_limits": {
            "override": seller.rate_limits is not None,
            **sandbox.limits_for(seller).model_dump(),
        },
        "faults": {
            "override": seller.faults is not None,
            **sandbox.faults_for(seller).settings.model_dump(),
        },
    }


@router.get("/health")
async def health(request: Request) -> Response:
    sandbox = _sandbox(request)
    return respond({"status": "ok", "sellers": len(sandbox.sellers), "now": sandbox.clock.now()})


@router.post("/reset")
async def reset(request: Request) -> Response:
    """Forget every seller; global limits, faults and the clock back to the process settings."""
    _sandbox(request).reset()
    return respond({"status": "reset"})


# --- sellers --------------------------------------------------------------------------------------


@router.post("/sellers")
async def create_seller(request: Request, spec: SellerSpec) -> Response:
    """Idempotent by name: the same name answers the same seller and token (`created: false`)."""
    sandbox = _sandbox(request)
    # Seeding a million items takes seconds: keep the event loop serving meanwhile.
    seller, created = await run_in_threadpool(sandbox.create_seller, spec)
    body = {"seller_id": seller.id, "token": seller.token, "name": seller.name, "created": created}
    return respond(body, 201 if created else 200)


@router.get("/sellers")
async def list_sellers(request: Request) -> Response:
    sellers = _sandbox(request).sellers.values()
    return respond({"sellers": [_token_view(s) | {"name": s.name} for s in sellers]})


@router.get("/sellers/{seller_id}")
async def get_seller(request: Request, seller_id: str) -> Response:
    return respond(_seller_view(_sandbox(request), _seller(request, seller_id)))


@router.patch("/sellers/{seller_id}")
async def update_seller(request: Request, seller_id: str, update: SellerSettingsUpdate) -> Response:
    sandbox, seller = _sandbox(request), _seller(request, seller_id)
    if update.moderation_seconds is not None:
        seller.moderation_seconds = update.moderation_seconds
    if update.new_items_per_minute is not None:
        seller.set_growth(update.new_items_per_minute, sandbox.clock.now())
    return respond(_seller_view(sandbox, seller))


def _token_view(seller: Seller) -> dict[str, Any]:
    return {"seller_id": seller.id, "token": seller.token, "revoked": seller.revoked}


@router.post("/sellers/{seller_id}/token/revoke")
async def revoke_token(request: Request, seller_id: str) -> Response:
    """The seller withdraws its token: every marketplace call with it (/ping included) answers
    the gateway's 401 until the token is restored. Idempotent."""
    seller = _seller(request, seller_id)
    seller.revoked = True
    return respond(_token_view(seller))


@router.post("/sellers/{seller_id}/token/restore")
async def restore_token(request: Request, seller_id: str) -> Response:
    """The same token works again (WB would issue a new one; ours is derived from the name)."""
    seller = _seller(request, seller_id)
    seller.revoked = False
    return respond(_token_view(seller))


@router.post("/sellers/{seller_id}/items")
async def add_items(request: Request, seller_id: str, body: NewItems) -> Response:
    """Items created now. `ids` are review/question ids, chat ids, or event ids (existing chats);
    at most the first 1000 are listed."""
    seller = _seller(request, seller_id)
    ids = seller.add_items(body.channel, body.count, _sandbox(request).clock.now(), body.existing)
    return respond({"channel": body.channel, "added": len(ids), "ids": ids[:IDS_RETURNED_MAX]})


# --- observations ---------------------------------------------------------------------------------


@router.get("/sellers/{seller_id}/requests")
async def request_log(request: Request, seller_id: str) -> Response:
    return respond(_seller(request, seller_id).log.summary())


@router.delete("/sellers/{seller_id}/requests")
async def clear_request_log(request: Request, seller_id: str) -> Response:
    _seller(request, seller_id).log.clear()
    return Response(status_code=204)


@router.get("/sellers/{seller_id}/deliveries")
async def deliveries(request: Request, seller_id: str) -> Response:
    """How many times each item got an answer or message (POST/PATCH answer, chat message)."""
    seller = _seller(request, seller_id)
    return respond({channel: dict(counts) for channel, counts in seller.deliveries.items()})


@router.delete("/sellers/{seller_id}/deliveries")
async def clear_deliveries(request: Request, seller_id: str) -> Response:
    for counts in _seller(request, seller_id).deliveries.values():
        counts.clear()
    return Response(status_code=204)


@router.get("/sellers/{seller_id}/malformed")
async def malformed(request: Request, seller_id: str) -> Response:
    """Every item list responses serve corrupted under the faults in force for this seller."""
    sandbox, seller = _sandbox(request), _seller(request, seller_id)
    faults = sandbox.faults_for(seller)
    found: dict[str, Any] = {
        "malformed_rate": faults.settings.malformed_rate,
        "seed": faults.settings.seed,
    }
    for channel in ("review", "question"):
        feed = seller.feed(channel)
        found[channel] = [
            {"index": i, "id": feed.external_id(i), "kind": kind}
            for i in range(len(feed))
            if (kind := faults.malformed_kind(feed.key, i, REVIEW_FAULTS)) is not None
        ]
    chats = seller.chats
    found["chat"] = [
        {
            "index": e,
            "event_id": chats.event_id(e),
            "chat_id": chats.chat_id(chats.ev_chat[e]),
            "kind": kind,
        }
        for e in range(chats.event_count)
        if (kind := faults.malformed_kind(chats.key, e, EVENT_FAULTS)) is not None
    ]
    return respond(found)


# --- limits, faults, clock ------------------------------------------------------------------------


def _override_view(override: bool, settings: BaseModel) -> dict[str, Any]:
    """A seller's limits or faults: whether they are its own (else the global ones) and them."""
    return {"override": override, **settings.model_dump()}


@router.get("/rate-limits")
async def get_rate_limits(request: Request) -> Response:
    return respond(_sandbox(request).rate_limits.model_dump())


@router.put("/rate-limits")
async def put_rate_limits(request: Request, limits: RateLimits) -> Response:
    _sandbox(request).set_global_limits(limits)
    return respond(limits.model_dump())


@router.get("/sellers/{seller_id}/rate-limits")
async def get_seller_rate_limits(request: Request, seller_id: str) -> Response:
    sandbox, seller = _sandbox(request), _seller(request, seller_id)
    return respond(_override_view(seller.rate_limits is not None, sandbox.limits_for(seller)))


@router.put("/sellers/{seller_id}/rate-limits")
async def put_seller_rate_limits(request: Request, seller_id: str, limits: RateLimits) -> Response:
    _sandbox(request).set_seller_limits(_seller(request, seller_id), limits)
    return respond(_override_view(True, limits))


@router.delete("/sellers/{seller_id}/rate-limits")
async def delete_seller_rate_limits(request: Request, seller_id: str) -> Response:
    _sandbox(request).set_seller_limits(_seller(request, seller_id), None)
    return Response(status_code=204)


@router.get("/faults")
async def get_faults(request: Request) -> Response:
    return respond(_sandbox(request).faults.settings.model_dump())


@router.put("/faults")
async def put_faults(request: Request, settings: FaultSettings) -> Response:
    """Replaces the global faults; `{}` switches them all off."""
    _sandbox(request).set_global_faults(settings)
    return respond(settings.model_dump())


@router.get("/sellers/{seller_id}/faults")
async def get_seller_faults(request: Request, seller_id: str) -> Response:
    sandbox, seller = _sandbox(request), _seller(request, seller_id)
    return respond(_override_view(seller.faults is not None, sandbox.faults_for(seller).settings))


@router.put("/sellers/{seller_id}/faults")
async def put_seller_faults(request: Request, seller_id: str, settings: FaultSettings) -> Response:
    _sandbox(request).set_seller_faults(_seller(request, seller_id), settings)
    return respond(_override_view(True, settings))


@router.delete("/sellers/{seller_id}/faults")
async def delete_seller_faults(request: Request, seller_id: str) -> Response:
    _sandbox(request).set_seller_faults(_seller(request, seller_id), None)
    return Response(status_code=204)


def _clock_view(sandbox: Sandbox) -> dict[str, float]:
    return {"now": sandbox.clock.now(), "offset_seconds": sandbox.clock.offset}


@router.get("/clock")
async def get_clock(request: Request) -> Response:
    return respond(_clock_view(_sandbox(request)))


@router.post("/clock")
async def advance_clock(request: Request, body: ClockAdvance) -> Response:
    """Moves sandbox time forward: moderation, rate-limit refills and growth follow it."""
    sandbox = _sandbox(request)
    sandbox.clock.advance(body.advance_seconds)
    return respond(_clock_view(sandbox))

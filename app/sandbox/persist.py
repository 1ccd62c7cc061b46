"""The state file (`--state-file`): what a restarted sandbox needs to answer as it did before.

The seeded history is not stored: a seller regenerates it from its spec and creation time, as
the first process did. The file holds everything that came after: sellers and their tokens,
revocations, items added (by the admin API or by growth), answers, sent chat messages, viewed
flags, delivery counts, limits, faults and the clock offset. Request logs are not kept.

Written after every request that changed something, before its answer leaves (see
`SaveState`), as a temporary file renamed over the old one, so a killed process leaves either the
old or the new file, never half of one.
"""

import base64
import contextlib
import dataclasses
import os
import tempfile
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.sandbox.config import FaultSettings, RateLimits, SellerSpec
from app.sandbox.faults import FaultState
from app.sandbox.seller import Seller
from app.sandbox.state import Sandbox
from app.sandbox.store import Answer, Chats, Feed, SentFile, SentMessage

VERSION = 1
_READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class StateFileError(RuntimeError):
    pass


# --- writing --------------------------------------------------------------------------------------


def save(sandbox: Sandbox, path: Path) -> None:
    data = orjson.dumps(snapshot(sandbox))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # No fsync: the rename is what protects against a killed process, and a power cut in
        # a development sandbox is not worth a disk flush per request.
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def snapshot(sandbox: Sandbox) -> dict[str, Any]:
    return {
        "version": VERSION,
        "clock_offset": sandbox.clock.offset,
        "rate_limits": sandbox.rate_limits.model_dump(),
        "faults": sandbox.faults.settings.model_dump(),
        "sellers": [_seller(seller) for seller in list(sandbox.sellers.values())],
    }


def _seller(seller: Seller) -> dict[str, Any]:
    return {
        "spec": seller.spec.model_dump(),
        "token": seller.token,
        "created_at": seller.created_at,
        "revoked": seller.revoked,
        "moderation_seconds": seller.moderation_seconds,
        "growth": {
            "per_minute": seller.growth.per_minute,
            "anchor": seller.growth.anchor,
            "added": seller.growth.added,
        },
        "rate_limits": None if seller.rate_limits is None else seller.rate_limits.model_dump(),
        "faults": None if seller.faults is None else seller.faults.settings.model_dump(),
        "deliveries": {channel: dict(counts) for channel, counts in seller.deliveries.items()},
        "review": _feed(seller.reviews, seller.spec.reviews),
        "question": _feed(seller.questions, seller.spec.questions),
        "chat": _chats(seller.chats, seller.spec.chats, seller.seeded_events),
    }


def _feed(feed: Feed, seeded: int) -> dict[str, Any]:
    return {
        "times": _pack(feed.times[seeded:]),
        "products": _pack(feed.products[seeded:]),
        "answers": [[index, dataclasses.asdict(a)] for index, a in feed.answers.items()],
        "viewed": sorted(feed.viewed),
    }


def _chats(chats: Chats, seeded_chats: int, seeded_events: int) -> dict[str, Any]:
    return {
        "products": _pack(chats.products[seeded_chats:]),
        "ev_ms": _pack(chats.ev_ms[seeded_events:]),
        "ev_chat": _pack(chats.ev_chat[seeded_events:]),
        "ev_seq": _pack(chats.ev_seq[seeded_events:]),
        "ev_kind": base64.b64encode(chats.ev_kind[seeded_events:]).decode(),
        "sent": [
            [event, m.text, [dataclasses.astuple(f) for f in m.files], m.sign]
            for event, m in chats.sent.items()
        ],
    }


def _pack(values: "array[Any]") -> list[str]:
    return [values.typecode, base64.b64encode(values.tobytes()).decode()]


# --- reading --------------------------------------------------------------------------------------


def load(sandbox: Sandbox, path: Path) -> bool:
    """Restore `path` into a fresh sandbox; False when there is no such file yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return False
    problem = f"{path} is not a sandbox state file this version can read"
    try:
        data = orjson.loads(raw)
        if data.get("version") != VERSION:
            raise StateFileError(f"{problem}: version {data.get('version')!r}, not {VERSION}")
        restore(sandbox, data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # pydantic's: ValueError
        raise StateFileError(f"{problem}: {exc!r}") from exc
    return True


def restore(sandbox: Sandbox, data: dict[str, Any]) -> None:
    sandbox.reset()
    sandbox.clock.offset = float(data["clock_offset"])
    sandbox.set_global_limits(RateLimits.model_validate(data["rate_limits"]))
    sandbox.set_global_faults(FaultSettings.model_validate(data["faults"]))
    for item in data["sellers"]:
        sandbox.add_seller(_restore_seller(sandbox, item))


def _restore_seller(sandbox: Sandbox, data: dict[str, Any]) -> Seller:
    spec = SellerSpec.model_validate(data["spec"])
    seller = Seller(spec, sandbox.secret, data["created_at"], sandbox.config.request_log_capacity)
    seller.token = data["token"]  # kept even if the process now runs with another secret
    seller.revoked = bool(data["revoked"])
    seller.moderation_seconds = float(data["moderation_seconds"])
    growth = data["growth"]
    seller.growth.per_minute = growth["per_minute"]
    seller.growth.anchor = growth["anchor"]
    seller.growth.added = growth["added"]
    if data["rate_limits"] is not None:
        seller.rate_limits = RateLimits.model_validate(data["rate_limits"])
    if data["faults"] is not None:
        seller.faults = FaultState(FaultSettings.model_validate(data["faults"]))
    seller.deliveries = {c: Counter(counts) for c, counts in data["deliveries"].items()}
    now = sandbox.clock.now()
    _restore_feed(seller.reviews, data["review"], now)
    _restore_feed(seller.questions, data["question"], now)
    _restore_chats(seller.chats, data["chat"])
    return seller


def _restore_feed(feed: Feed, data: dict[str, Any], now: float) -> None:
    feed.extend(_unpack(data["times"]), _unpack(data["products"]))
    for index, fields in data["answers"]:
        feed.restore_answer(index, Answer(**fields))
    feed.viewed = set(data["viewed"])
    feed.settle(now)


def _restore_chats(chats: Chats, data: dict[str, Any]) -> None:
    chats.extend(
        _unpack(data["products"]),
        _unpack(data["ev_ms"]),
        _unpack(data["ev_chat"]),
        _unpack(data["ev_seq"]),
        base64.b64decode(data["ev_kind"]),
    )
    for event, text, files, sign in data["sent"]:
        chats.sent[event] = SentMessage(text, tuple(SentFile(*f) for f in files), sign)


def _unpack(packed: list[str]) -> "array[Any]":
    typecode, data = packed
    values = array(typecode)
    values.frombytes(base64.b64decode(data))
    return values


# --- when to write --------------------------------------------------------------------------------


def _growth_mark(sandbox: Sandbox) -> int:
    """Changes when growth added items during a read (a GET can create items)."""
    return sum(sum(s.growth.added.values()) for s in list(sandbox.sellers.values()))


class SaveState:
    """ASGI middleware: after a request that changed the sandbox (any method but GET/HEAD/OPTIONS,
    or a read during which growth added items), write the state file before the answer starts,
    so whatever a client saw acknowledged survives a restart."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox, path: Path) -> None:
        self.app = app
        self.sandbox = sandbox
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        writes = scope["method"] not in _READ_ONLY_METHODS
        mark = _growth_mark(self.sandbox)

        async def save_then_send(message: Message) -> None:
            if message["type"] == "http.response.start" and (
                writes or _growth_mark(self.sandbox) != mark
            ):
                save(self.sandbox, self.path)
            await send(message)

        await self.app(scope, receive, save_then_send)

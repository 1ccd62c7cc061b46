"""The read loops of one run: reviews/questions by date windows, chats by the event cursor.

Every page is one transaction: its upserts, its sync errors, the run's counters and the cursor
that covers it commit together, so the cursor never moves past data that is not stored.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.connectors.base import (
    ChatDirectory,
    ChatThread,
    Connector,
    Invalid,
    ListChannel,
    ListPage,
    Marketplace,
)
from app.core.db import transaction
from app.links import service as links_service
from app.sync import repository
from app.sync.normalize import Normalized, SellerContext, classified, error_row, list_rows

# Incremental reads start this far before the watermark: the edge is re-read, dedup makes it free.
OVERLAP_SECONDS = 300
# Rows normalised and upserted at a time: bounds a worker's memory on 5,000-item pages.
UPSERT_CHUNK = 1000
# Open gaps older than the incremental window read again per list and run (the window's own
# are read anyway): bounds what a seller with many gaps adds to every run.
GAP_RETRIES_PER_RUN = 10

T = TypeVar("T")


async def prefetched(pages: AsyncIterator[T]) -> AsyncIterator[T]:
    """Yield each page while the next one is already being fetched: reading overlaps writing.

    Only one page is ever ahead, and the cursor still moves only when a page is committed.
    """
    ahead = asyncio.ensure_future(anext(pages))
    try:
        while True:
            try:
                page = await ahead
            except StopAsyncIteration:
                return
            ahead = asyncio.ensure_future(anext(pages))
            yield page
    finally:
        ahead.cancel()
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
            await ahead


@dataclass
class RunContext:
    sessionmaker: async_sessionmaker[AsyncSession]
    connector: Connector
    client: Marketplace
    seller: SellerContext
    run_id: int
    channel: str
    full_resync: bool
    _requests_seen: int = field(default=0, init=False)
    _limited_seen: int = field(default=0, init=False)

    def call_counts(self) -> dict[str, int]:
        """Requests and 429s since the last call, for the run's counters."""
        stats = self.client.stats
        counts = {
            "requests": stats.requests - self._requests_seen,
            "rate_limited": stats.rate_limited - self._limited_seen,
        }
        self._requests_seen, self._limited_seen = stats.requests, stats.rate_limited
        return counts


def _errors(job: RunContext, invalid: list[Invalid]) -> list[dict[str, Any]]:
    return [
        error_row(i, seller_id=job.seller.seller_id, run_id=job.run_id, channel=job.channel)
        for i in invalid
    ]


def normalize_list(job: RunContext, items: list[Any]) -> Normalized:
    channel: ListChannel = "review" if job.channel == "review" else "question"
    return list_rows(job.connector, channel, items, job.seller)


async def _store_list_page(
    job: RunContext, page: ListPage, list_name: str, cursor_key: str | None, watermark: int | None
) -> int | None:
    """Normalise and upsert one page in chunks (bounded memory) in one transaction, together
    with the run's counters, how a dense window's read went (`sync_gaps`) and, when
    `cursor_key` is given, the watermark the page moves to."""
    items = page.items
    counts = dict.fromkeys(("created", "updated", "skipped", "errors"), 0)
    new_ids: list[int] = []
    async with transaction(job.sessionmaker) as session:
        await repository.lock_existing(
            session, job.seller.seller_id, job.channel, job.connector.item_ids(items)
        )
        for start in range(0, len(items), UPSERT_CHUNK):
            batch = normalize_list(job, items[start : start + UPSERT_CHUNK])
            written = await repository.upsert_interactions(session, batch.rows)
            await repository.record_errors(session, _errors(job, batch.invalid))
            counts["created"] += written.created
            counts["updated"] += written.updated
            counts["skipped"] += len(batch.rows) - written.created - written.updated
            new_ids += written.new_ids
            counts["errors"] += len(batch.invalid)
            if cursor_key and batch.newest is not None:
                watermark = max(batch.newest, watermark or 0)
        if cursor_key and watermark is not None:
            await repository.merge_cursor_state(
                session, job.seller.seller_id, job.channel, {cursor_key: watermark}
            )
        if page.window is not None:
            gap = repository.GapKey(job.seller.seller_id, job.channel, list_name)
            if await repository.record_window(session, gap, page.window, job.run_id):
                counts["gaps"] = 1
        await repository.add_to_run(
            session, job.run_id, fetched=len(items), **counts, **job.call_counts()
        )
        await _link_later(session, job, new_ids)
    return watermark


async def _link_later(session: AsyncSession, job: RunContext, new_ids: list[int]) -> None:
    """New items join the seller's link backlog, committed with this page. The run's end asks
    for one recompute covering every page (`app.sync.tasks`), not one task per page."""
    if new_ids:
        await links_service.add_to_backlog(session, job.seller.seller_id, new_ids)


async def sync_list(job: RunContext) -> None:
    """Reviews or questions: both the unanswered and the answered list (the marketplace lists
    them apart), each after another try at its open gaps older than the incremental window."""
    channel: ListChannel = "review" if job.channel == "review" else "question"
    async with transaction(job.sessionmaker) as session:
        state = await repository.get_cursor_state(session, job.seller.seller_id, channel)
    remote_unanswered: int | None = None
    for key, answered in (("unanswered", False), ("answered", True)):
        watermark = None if job.full_resync else state.get(key)
        since = watermark - OVERLAP_SECONDS if isinstance(watermark, int) else None
        if since is not None:
            await _retry_gaps(job, channel, key, answered, before=since)
        dense: set[int] = set()  # seconds read one by one (their gaps are recorded as read)
        pages = job.client.iter_items(channel, is_answered=answered, date_from=since)
        async for page in prefetched(pages):
            if not answered and remote_unanswered is None:
                remote_unanswered = page.count_unanswered
            if page.window is not None:
                dense.add(page.window.date_from)
            watermark = await _store_list_page(job, page, key, key, watermark)
        # Every other second from `since` on was read in full: its old gap, if any, is closed.
        async with transaction(job.sessionmaker) as session:
            gap = repository.GapKey(job.seller.seller_id, channel, key)
            await repository.resolve_gaps_read(session, gap, since=since, dense=dense)
    await _reconcile(job, channel, remote_unanswered)


async def _retry_gaps(
    job: RunContext,
    channel: ListChannel,
    list_name: str,
    answered: bool,
    *,
    before: int,
) -> None:
    """Read again the open gaps of this list that end before `before`; each read updates its
    gap, or resolves it when nothing is missing any more."""
    gap = repository.GapKey(job.seller.seller_id, channel, list_name)
    async with transaction(job.sessionmaker) as session:
        windows = await repository.open_gap_windows(
            session, gap, before=before, limit=GAP_RETRIES_PER_RUN
        )
    for date_from, date_to in windows:
        for second in range(date_from, date_to + 1):
            pages = job.client.read_second(channel, is_answered=answered, second=second)
            async for page in prefetched(pages):
                await _store_list_page(job, page, list_name, None, None)


async def _reconcile(job: RunContext, channel: ListChannel, remote_unanswered: int | None) -> None:
    """Items answered elsewhere (seller portal) leave the unanswered list without appearing in
    the incremental answered window. When our open count disagrees with the marketplace's,
    re-read the answered list from our oldest open item: a bounded, rare catch-up."""
    if remote_unanswered is None:
        return
    async with transaction(job.sessionmaker) as session:
        local = await repository.open_counts(session, job.seller.seller_id, channel)
        oldest = await repository.oldest_open(session, job.seller.seller_id, channel)
    if local <= remote_unanswered or oldest is None:
        return
    since = int(oldest.timestamp()) - OVERLAP_SECONDS
    pages = job.client.iter_items(channel, is_answered=True, date_from=since)
    async for page in prefetched(pages):
        await _store_list_page(job, page, "answered", None, None)


async def sync_chats(job: RunContext) -> None:
    """The chat list for metadata (reply addresses, names, product), then new events by cursor."""
    async with transaction(job.sessionmaker) as session:
        state = await repository.get_cursor_state(session, job.seller.seller_id, "chat")
    directory = job.connector.chat_directory(await job.client.chats())
    if directory.invalid:
        async with transaction(job.sessionmaker) as session:
            await repository.record_errors(session, _errors(job, directory.invalid))
            await repository.add_to_run(session, job.run_id, errors=len(directory.invalid))

    next_ms = None if job.full_resync else state.get("next")
    pages = job.client.iter_events(next_ms if isinstance(next_ms, int) else None)
    async for page in prefetched(pages):
        patch = {"next": page.next} if page.next else None
        await _commit_events(job, len(page.events), page.events, directory, patch)


async def _commit_events(
    job: RunContext,
    fetched: int,
    raws: list[Any],
    directory: ChatDirectory,
    cursor_patch: dict[str, Any] | None,
) -> None:
    batch = job.connector.chat_threads(raws, directory, job.seller.seller_id)
    threads: list[ChatThread] = batch.threads
    rows = [classified(thread.item, job.seller) for thread in threads]
    async with transaction(job.sessionmaker) as session:
        chat_ids = [thread.chat_id for thread in threads]
        await repository.lock_existing(session, job.seller.seller_id, "chat", chat_ids)
        written = await repository.upsert_interactions(session, rows, chat=True)
        messages = [
            message | {"interaction_id": written.ids[thread.chat_id]}
            for thread in threads
            for message in thread.messages
        ]
        new_messages = await repository.insert_messages(session, messages)
        await repository.record_errors(session, _errors(job, batch.invalid))
        if cursor_patch:
            await repository.merge_cursor_state(session, job.seller.seller_id, "chat", cursor_patch)
        await repository.add_to_run(
            session,
            job.run_id,
            fetched=fetched,
            created=written.created,
            updated=written.updated,
            skipped=len(messages) - new_messages,
            errors=len(batch.invalid),
            **job.call_counts(),
        )
        await _link_later(session, job, written.new_ids)

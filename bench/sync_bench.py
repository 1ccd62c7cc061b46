"""Sync benchmark (product.md §2): one large seller and 20 small ones, synced from the sandbox by a
real Celery worker (prefork, `--concurrency 2`, as `make run` starts it).

    .venv/bin/python -m bench.sync_bench [--repeat 3] [--scale 1.0] [--tick-seconds 30]

1. Unthrottled full sync of one seller (100,000 reviews + 20,000 questions + 2,000 chats of ≈10
   messages): sandbox limits off and a high limit override for the seller, three runs queued at
   once; items/s end to end and peak worker memory, `--repeat` times on a fresh database state.
2. Incremental sync with nothing new: requests per channel.
   Then: where the time goes (one page of each kind timed per stage, CPU per process).
3. Throttled full sync: sandbox limits on (WB's documented ones), our defaults; total time against
   max(rate-limit lower bound, unthrottled time), and the sandbox's own view of the request rate.
4. 20 sellers × ≈5,000 items made due at once, one `sync.tick` (what beat sends): how long each
   run waits to start, against one beat interval.

Every number is measured; a missed target is printed as MISSED, never adjusted. Postgres/Redis are
BENCH_DATABASE_URL / BENCH_REDIS_URL when set, else embedded ones under `.data/bench/`; the
database `sellerdesk_bench` is dropped and created, the Redis database flushed.
"""

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select, text, update

import app.models  # noqa: F401 - every table in the metadata, or foreign keys cannot resolve
from app.connectors.wildberries import CONNECTOR, mapping
from app.connectors.wildberries.client import WildberriesClient
from app.connectors.wildberries.limits import CHAT, FEEDBACKS, MARKETPLACE_LIMITS
from app.connectors.wildberries.schemas import Chat, ChatEvent
from app.core.egress import EgressPolicy
from app.core.ratelimit import Limit, RateLimiter
from app.core.redis import create_redis
from app.sellers import service as sellers_service
from app.sellers.models import Seller
from app.sync import normalize, repository
from app.sync.models import FINAL_RUN_STATUSES, SyncRun
from app.worker import names
from bench.report import (
    MB,
    Report,
    Section,
    arg_parser,
    cpus,
    fmt_mb,
    fmt_s,
    nearest_rank,
    run_main,
    scale_note,
)
from bench.stack import (
    Harness,
    MemoryPeaks,
    MemorySampler,
    SandboxServer,
    Services,
    Tenant,
    delete_redis_keys,
    flush_redis,
    migrate,
    poll,
    process_cpu_seconds,
    recreate_database,
    say,
    start_services,
)

SECRETS_KEY = "sellerdesk-bench-only"  # a throwaway database's key
FINAL = FINAL_RUN_STATUSES

# Targets (the words; never adjusted here).
TARGET_ITEMS_PER_S = 5000.0
TARGET_MEMORY_MB = 300.0
TARGET_THROTTLED_RATIO = 1.2
TARGET_INCREMENTAL_REQUESTS = 3
SANDBOX_MAX_FEEDBACKS_1S = 9  # burst 6 + 3/s × 1 s
SANDBOX_MAX_CHAT_10S = 20  # burst 10 + 1/s × 10 s

# WB's documented limits (wb-api.md §0): the sandbox enforces them (ours keep a token in hand).
WB_FEEDBACKS = MARKETPLACE_LIMITS[FEEDBACKS]
WB_CHAT = MARKETPLACE_LIMITS[CHAT]
SANDBOX_LIMITS_ON = {
    "enabled": True,
    "feedbacks": {"rate": WB_FEEDBACKS.rate, "burst": WB_FEEDBACKS.burst},
    "chat": {"rate": WB_CHAT.rate, "burst": WB_CHAT.burst},
}
# Our own limiter must not throttle the unthrottled runs either.
NO_LIMIT = {"rate": 10_000, "burst": 10_000}
OVERRIDE_UNLIMITED = {FEEDBACKS: NO_LIMIT, CHAT: NO_LIMIT}

# Timeouts (s): generous, but every wait ends.
UNTHROTTLED_TIMEOUT = 300.0
INCREMENTAL_TIMEOUT = 60.0
THROTTLED_MIN_TIMEOUT = 300.0
MULTI_TIMEOUT = 420.0
POLL_INTERVAL = 0.2
PROGRESS_EVERY = 5.0
PROFILE_REPEAT = 3


# --- options -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    repeat: int
    scale: float
    tick_seconds: float
    sellers: int
    skip: frozenset[str]

    def big(self) -> dict[str, Any]:
        def n(full: int) -> int:
            return max(1, round(full * self.scale))

        return {
            "reviews": n(100_000),
            "questions": n(20_000),
            "chats": n(2_000),
            "messages_per_chat": 10,
        }

    def small(self) -> dict[str, Any]:
        return {"reviews": 3_500, "questions": 1_000, "chats": 50, "messages_per_chat": 10}


# --- runs and sellers --------------------------------------------------------------------------


@dataclass
class RunRow:
    """A sync run as read back from `sync_runs`."""

    id: int
    seller_id: int
    channel: str
    status: str
    fetched: int
    created: int
    updated: int
    errors: int
    requests: int
    rate_limited: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None

    @classmethod
    def of(cls, run: SyncRun) -> "RunRow":
        return cls(
            run.id,
            run.seller_id,
            run.channel,
            run.status,
            run.fetched,
            run.created,
            run.updated,
            run.errors,
            run.requests,
            run.rate_limited,
            run.created_at,
            run.started_at,
            run.finished_at,
            run.error,
        )

    @property
    def duration(self) -> float:
        if self.started_at is None or self.finished_at is None:
            return float("nan")
        return (self.finished_at - self.started_at).total_seconds()

    def summary(self) -> str:
        rate = self.fetched / self.duration if self.duration > 0 else float("nan")
        return (
            f"{self.fetched:,} items, {self.requests} requests ({self.rate_limited} got 429), "
            f"{fmt_s(self.duration)} ({rate:,.0f} items/s)"
        )


@dataclass
class SyncResult:
    wall: float  # publishing → the last run's finished_at
    runs: list[RunRow]
    memory: MemoryPeaks
    cpu: dict[str, float]  # process → CPU seconds spent during the sync

    @property
    def fetched(self) -> int:
        return sum(r.fetched for r in self.runs)

    def by_channel(self) -> dict[str, RunRow]:
        return {r.channel: r for r in self.runs}

    def requests(self, *channels: str) -> int:
        return sum(r.requests for r in self.runs if r.channel in channels)


def _brief(runs: Sequence[RunRow]) -> str:
    if not runs:
        return "no runs yet"
    by_status: dict[str, int] = {}
    for r in runs:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items()))
    return f"{statuses}; fetched {sum(r.fetched for r in runs):,}"


class Bench(Harness):
    def __init__(
        self, opts: Options, services: Services, sandbox: SandboxServer, report: Report
    ) -> None:
        super().__init__(services, sandbox, SECRETS_KEY)
        self.opts = opts
        self.report = report
        self.full_runs: list[SyncResult] = []  # the unthrottled runs

    async def fresh_state(self) -> None:
        """Nothing synced yet: every seller's items, cursors, runs and errors gone; our rate-limit
        buckets full again."""
        async with self.maker() as session:
            await session.execute(
                text(
                    "TRUNCATE interactions, chat_messages, interaction_events, sync_cursors, "
                    "sync_runs, sync_errors CASCADE"
                )
            )
            await session.commit()
        delete_redis_keys(self.services.redis_url, "sellerdesk:rl:*")

    # --- runs ----------------------------------------------------------------------------------

    async def runs_where(self, *conditions: Any) -> list[RunRow]:
        async with self.maker() as session:
            result = await session.execute(select(SyncRun).where(*conditions).order_by(SyncRun.id))
            return [RunRow.of(run) for run in result.scalars()]

    async def wait_final(
        self,
        label: str,
        load: Callable[[], Awaitable[list[RunRow]]],
        expected: int,
        limit_s: float,
    ) -> list[RunRow]:
        """Poll `sync_runs` until `expected` runs exist and all are final."""
        assert self.worker is not None
        return await poll(
            label,
            load,
            lambda runs: len(runs) >= expected and all(r.status in FINAL for r in runs),
            _brief,
            limit_s,
            self.worker.check_alive,
            not_done="runs not final",
            interval=POLL_INTERVAL,
            progress_every=PROGRESS_EVERY,
        )

    async def measure(
        self,
        label: str,
        publish: Callable[[], None],
        load: Callable[[], Awaitable[list[RunRow]]],
        expected: int,
        limit_s: float,
    ) -> tuple[SyncResult, datetime]:
        """Publish, wait for the runs, sampling memory and CPU meanwhile."""
        assert self.worker is not None
        before = self.cpu_snapshot()
        with MemorySampler(self.worker.pid) as sampler:
            t0 = datetime.now(UTC)
            publish()
            runs = await self.wait_final(label, load, expected, limit_s)
        after = self.cpu_snapshot()
        cpu = {k: after[k] - before[k] for k in after if k in before}
        end = max(r.finished_at or t0 for r in runs)
        return SyncResult((end - t0).total_seconds(), runs, sampler.peaks, cpu), t0

    async def sync(self, label: str, tenant: Tenant, limit_s: float) -> SyncResult:
        """One run per channel for `tenant`, queued at once; wall = publish → last finished_at."""
        run_ids = await self.queue_runs(tenant.ours)

        def publish() -> None:
            for run_id in run_ids:
                self.broker.send_task(names.SYNC_RUN, args=[run_id])

        def load() -> Awaitable[list[RunRow]]:
            return self.runs_where(SyncRun.id.in_(run_ids))

        result, _ = await self.measure(label, publish, load, len(run_ids), limit_s)
        return result

    def check_runs(self, section: Section, label: str, runs: Sequence[RunRow]) -> None:
        bad = [r for r in runs if r.status != "succeeded" or r.errors]
        measured = "; ".join(
            f"{r.channel} {r.status} errors={r.errors} {r.error or ''}"[:200] for r in bad
        )
        section.check(f"{label}: runs succeeded", measured or "all succeeded", "all", not bad)

    def check_stored(
        self, section: Section, label: str, stored: dict[str, int], expected: dict[str, int]
    ) -> None:
        measured = ", ".join(f"{k} {v:,}" for k, v in stored.items())
        if stored != expected:
            measured += "; sandbox: " + ", ".join(f"{k} {v:,}" for k, v in expected.items())
        section.check(label, measured, "equal", stored == expected)

    def median_full_run(self) -> SyncResult:
        ordered = sorted(self.full_runs, key=lambda r: r.wall)
        return ordered[(len(ordered) - 1) // 2]

    # --- 1. unthrottled -----------------------------------------------------------------------

    async def unthrottled(self, big: Tenant) -> None:
        section = self.report.section("1. unthrottled full sync, 1 seller")
        await self.set_limits(big, OVERRIDE_UNLIMITED)
        await self.admin.put("/_sandbox/rate-limits", json={"enabled": False})
        for i in range(1, self.opts.repeat + 1):
            await self.fresh_state()
            say(f"unthrottled full sync {i}/{self.opts.repeat}: 3 runs queued at once")
            result = await self.sync(f"unthrottled {i}", big, UNTHROTTLED_TIMEOUT)
            self.full_runs.append(result)
            say(
                f"  run {i}: {fmt_s(result.wall)}, {result.fetched:,} items, "
                f"{result.fetched / result.wall:,.0f} items/s; largest pool process RSS "
                f"{fmt_mb(result.memory.idle_largest_pool_rss)} before, "
                f"{fmt_mb(result.memory.largest_pool_rss)} peak"
            )
            for r in result.runs:
                say(f"    {r.channel}: {r.summary()}")
            self.check_runs(section, f"run {i}", result.runs)
            stored = await self.stored([big.ours])
            self.check_stored(section, f"run {i}: stored = sandbox", stored, big.expected)

        walls = [r.wall for r in self.full_runs]
        rates = [r.fetched / r.wall for r in self.full_runs]
        n = len(walls)
        section.info(
            "items per run (sum of `fetched`)", " / ".join(f"{r.fetched:,}" for r in self.full_runs)
        )
        section.info(f"wall time of the {n} runs", " / ".join(fmt_s(w) for w in walls))
        note = f" (N = {n}: p95 = the slowest run)" if n < 20 else ""
        section.info(
            f"wall time median / p95{note}",
            f"{fmt_s(statistics.median(walls))} / {fmt_s(nearest_rank(walls, 0.95))}",
        )
        target = f"≥ {TARGET_ITEMS_PER_S:,.0f}"
        median_rate, worst_rate = statistics.median(rates), min(rates)
        section.check(
            "items/s, median", f"{median_rate:,.0f}", target, median_rate >= TARGET_ITEMS_PER_S
        )
        section.check(
            "items/s, slowest run (p95 wall)",
            f"{worst_rate:,.0f}",
            target,
            worst_rate >= TARGET_ITEMS_PER_S,
        )
        largest = max(r.memory.largest_pool_rss for r in self.full_runs)
        total_rss = max(r.memory.total_rss for r in self.full_runs)
        total_pss = max(r.memory.total_pss for r in self.full_runs)
        main_rss = max(r.memory.main_rss for r in self.full_runs)
        target = f"≤ {TARGET_MEMORY_MB:.0f} MB"
        section.check(
            "peak RSS, largest single pool process",
            fmt_mb(largest),
            target,
            largest / MB <= TARGET_MEMORY_MB,
        )
        section.check(
            "peak RSS sum, main + 2 pool processes (counts forked pages 3×)",
            f"{fmt_mb(total_rss)} (main alone {fmt_mb(main_rss)})",
            target,
            total_rss / MB <= TARGET_MEMORY_MB,
        )
        section.check(
            "peak PSS sum, main + 2 pool processes (shared pages split)",
            fmt_mb(total_pss),
            target,
            total_pss / MB <= TARGET_MEMORY_MB,
        )
        first = self.full_runs[0].memory
        section.info(
            "before the first run (idle worker): largest pool process RSS / PSS sum",
            f"{fmt_mb(first.idle_largest_pool_rss)} / {fmt_mb(first.idle_total_pss)}",
        )
        for r in self.median_full_run().runs:
            section.info(f"median run, {r.channel} run", r.summary())

    # --- 2. incremental -----------------------------------------------------------------------

    async def incremental(self, big: Tenant) -> None:
        section = self.report.section("2. incremental, nothing new")
        say("incremental sync right after a full one (nothing new in the sandbox)")
        result = await self.sync("incremental", big, INCREMENTAL_TIMEOUT)
        self.check_runs(section, "incremental", result.runs)
        for channel, run in sorted(result.by_channel().items()):
            section.check(
                f"requests, {channel}",
                f"{run.requests} (fetched {run.fetched}, created {run.created}, "
                f"updated {run.updated})",
                f"≤ {TARGET_INCREMENTAL_REQUESTS}",
                run.requests <= TARGET_INCREMENTAL_REQUESTS,
            )
        section.info("wall time, 3 runs", fmt_s(result.wall))

    # --- where the time goes ------------------------------------------------------------------

    async def profile(self, big: Tenant) -> None:
        """One page of each kind through each stage, timed in this process with the worker's
        code (upserts rolled back); next to it the median unthrottled run's CPU per process."""
        say("where the time goes: one page per stage (fetch, normalise, upsert), median of 3")
        median = self.median_full_run()
        async with self.maker() as session:
            scratch = await sellers_service.create_seller(session, "bench-profile")  # no account
            await session.commit()
        ctx = normalize.SellerContext(seller_id=scratch.id, sla_targets={})
        redis = create_redis(self.services.redis_url)
        unlimited = Limit(rate=float(NO_LIMIT["rate"]), burst=NO_LIMIT["burst"])
        client = WildberriesClient(
            token=big.token,
            seller_id=big.ours,
            limiter=RateLimiter(redis),
            feedbacks_url=self.sandbox.url,
            chat_url=self.sandbox.url,
            policy=EgressPolicy.from_settings(self.settings),
            limits={FEEDBACKS: unlimited, CHAT: unlimited},
        )
        runs = median.by_channel()
        rows: list[str] = []
        try:
            for channel in ("review", "question"):
                rows += await self._profile_list(client, ctx, channel, big.expected[channel])
                rows += _measured_row(runs.get(channel))
            rows += await self._profile_chat(client, ctx, big.expected["messages"])
            rows += _measured_row(runs.get("chat"))
        finally:
            await client.aclose()
            await redis.aclose()
        wall, n_cpu = median.wall, cpus()
        intro = (
            f"One page per stage, median of {PROFILE_REPEAT}, timed in the benchmark process "
            "with the worker's own functions (upserts into a seller of their own, rolled back). "
            "'whole channel' = per-item cost × the channel's item count, if done serially."
        )
        cpu_intro = (
            f"CPU used during the median unthrottled run ({fmt_s(wall)} wall × {n_cpu} CPUs "
            f"= {wall * n_cpu:.1f} CPU-s available):"
        )
        cpu_rows = [
            f"| {name} | {sec:.1f} | {sec / wall:.0%} |" for name, sec in sorted(median.cpu.items())
        ]
        block = [
            "### Where the time goes",
            "",
            intro,
            "",
            "| channel | stage | items | ms per page | µs per item | whole channel |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            cpu_intro,
            "",
            "| process | CPU s | % of one CPU over the run |",
            "|---|---|---|",
            *cpu_rows,
        ]
        self.report.blocks.append("\n".join(block))

    async def _profile_list(
        self, client: WildberriesClient, ctx: normalize.SellerContext, channel: str, total: int
    ) -> list[str]:
        kind: Literal["review", "question"] = "review" if channel == "review" else "question"
        stages: dict[str, list[float]] = {}
        count = 0
        for _ in range(PROFILE_REPEAT):
            cpu0, t0 = process_cpu_seconds(self.sandbox.pid), time.perf_counter()
            page = await client.list_items(kind, is_answered=False, take=5000)
            t1 = time.perf_counter()
            sandbox_cpu = process_cpu_seconds(self.sandbox.pid) - cpu0
            rows = normalize.list_rows(CONNECTOR, kind, page.items, ctx).rows
            normalised = time.perf_counter()
            async with self.maker() as session:
                await session.execute(text("SELECT 1"))  # connection and transaction ready
                t2, c2 = time.perf_counter(), time.process_time()
                await repository.upsert_interactions(session, rows)
                t3, c3 = time.perf_counter(), time.process_time()
                await repository.upsert_interactions(session, rows)
                t4, c4 = time.perf_counter(), time.process_time()
                await session.rollback()
            count = len(rows)
            for name, seconds in (
                ("fetch: HTTP + sandbox render + JSON decode", t1 - t0),
                ("… of which sandbox CPU", sandbox_cpu),
                ("normalise (pydantic + classify)", normalised - t1),
                ("upsert, new rows", t3 - t2),
                ("… of which Python CPU in the caller (SQLAlchemy, asyncpg)", c3 - c2),
                ("upsert again, rows known and unchanged", t4 - t3),
                ("… of which Python CPU in the caller", c4 - c3),
            ):
                stages.setdefault(name, []).append(seconds)
        return [_stage_row(channel, name, count, vals, total) for name, vals in stages.items()]

    async def _profile_chat(
        self, client: WildberriesClient, ctx: normalize.SellerContext, total: int
    ) -> list[str]:
        stages: dict[str, list[float]] = {}
        n_chats = n_events = 0
        for _ in range(PROFILE_REPEAT):
            t0 = time.perf_counter()
            raw_chats = await client.chats()
            t1 = time.perf_counter()
            meta: dict[str, Chat] = {}
            for raw in raw_chats:
                chat = mapping.parse_chat(raw)
                meta[chat.chatID] = chat
            t2 = time.perf_counter()
            page = await client.events(None)
            t3 = time.perf_counter()
            events = sorted(
                (mapping.chat_event(raw) for raw in page.events), key=lambda e: e.addTimestamp
            )
            by_chat: dict[str, list[ChatEvent]] = {}
            for event in events:
                by_chat.setdefault(event.chatID, []).append(event)
            rows = [
                normalize.classified(mapping.chat_item(c, evs, meta.get(c), ctx.seller_id), ctx)
                for c, evs in by_chat.items()
            ]
            t4 = time.perf_counter()
            async with self.maker() as session:
                await session.execute(text("SELECT 1"))  # connection and transaction ready
                t4b, c4 = time.perf_counter(), time.process_time()
                ids = (await repository.upsert_interactions(session, rows, chat=True)).ids
                messages = [
                    mapping.message_row(e, ctx.seller_id) | {"interaction_id": ids[e.chatID]}
                    for e in events
                ]
                await repository.insert_messages(session, messages)
                t5, c5 = time.perf_counter(), time.process_time()
                await session.rollback()
            n_chats, n_events = len(raw_chats), len(events)
            for name, seconds in (
                ("chat list: fetch (once per run)", t1 - t0),
                ("chat list: parse (once per run)", t2 - t1),
                ("events: fetch", t3 - t2),
                ("events: parse + normalise", t4 - t3),
                ("events: upsert chats + insert messages", t5 - t4b),
                ("… of which Python CPU in the caller", c5 - c4),
            ):
                stages.setdefault(name, []).append(seconds)
        return [
            _stage_row("chat", name, n_chats, vals, n_chats)
            if name.startswith("chat list")
            else _stage_row("chat", name, n_events, vals, total)
            for name, vals in stages.items()
        ]

    # --- 3. throttled -------------------------------------------------------------------------

    async def throttled(self, big: Tenant) -> None:
        section = self.report.section("3. throttled full sync, 1 seller")
        reference = self.median_full_run()
        fb_requests = reference.requests("review", "question")
        chat_requests = reference.requests("chat")
        fb_rate, chat_rate = WB_FEEDBACKS.rate, WB_CHAT.rate
        lower = max(fb_requests / fb_rate, chat_requests / chat_rate)
        lower_burst = max(
            (fb_requests - WB_FEEDBACKS.burst) / fb_rate,
            (chat_requests - WB_CHAT.burst) / chat_rate,
        )
        unthrottled_median = statistics.median(r.wall for r in self.full_runs)
        bound = max(lower, unthrottled_median)

        await self.fresh_state()
        await self.set_limits(big, {})  # our defaults, which equal WB's
        await self.admin.put("/_sandbox/rate-limits", json=SANDBOX_LIMITS_ON)
        await self.admin.delete(f"/_sandbox/sellers/{big.sandbox_id}/requests")
        # Both sides' buckets start full: ours were deleted, the sandbox's refill within 10 s.
        await asyncio.sleep(WB_CHAT.burst / WB_CHAT.rate)
        say(
            f"throttled full sync: sandbox limits on (feedbacks {fb_rate:g}/s burst "
            f"{WB_FEEDBACKS.burst}, chat {chat_rate:g}/s burst {WB_CHAT.burst}), our defaults; "
            f"rate-limit lower bound {fmt_s(lower)}"
        )
        result = await self.sync("throttled", big, max(THROTTLED_MIN_TIMEOUT, 4 * bound))
        log = (await self.admin.get(f"/_sandbox/sellers/{big.sandbox_id}/requests")).json()
        self.check_runs(section, "throttled", result.runs)
        section.info(
            "requests in the median unthrottled run",
            f"feedbacks {fb_requests} (review + question), chat {chat_requests}",
        )
        section.info(
            f"rate-limit lower bound max(fb/{fb_rate:g}, chat/{chat_rate:g})",
            f"{fmt_s(lower)} (burst-adjusted (n − burst)/rate: {fmt_s(lower_burst)})",
        )
        section.info("max(lower bound, unthrottled median)", fmt_s(bound))
        section.info("throttled wall time", fmt_s(result.wall))
        ratio = result.wall / bound
        section.check(
            "throttled / max(lower bound, unthrottled median)",
            f"{ratio:.2f}",
            f"≤ {TARGET_THROTTLED_RATIO}",
            ratio <= TARGET_THROTTLED_RATIO,
        )
        burst_bound = max(lower_burst, unthrottled_median)
        section.info(
            "throttled / max(burst-adjusted bound, unthrottled median)",
            f"{result.wall / burst_bound:.2f}",
        )
        for r in result.runs:
            section.info(f"{r.channel} run", r.summary())
        fb, chat = log["by_group"]["feedbacks"], log["by_group"]["chat"]
        section.check(
            "sandbox: feedbacks requests in any 1 s, max",
            str(fb["max_in_any_1s"]),
            f"≤ {SANDBOX_MAX_FEEDBACKS_1S}",
            fb["max_in_any_1s"] <= SANDBOX_MAX_FEEDBACKS_1S,
        )
        section.check(
            "sandbox: chat requests in any 10 s, max",
            str(chat["max_in_any_10s"]),
            f"≤ {SANDBOX_MAX_CHAT_10S}",
            chat["max_in_any_10s"] <= SANDBOX_MAX_CHAT_10S,
        )
        section.info(
            "sandbox: 429 answers, feedbacks / chat",
            f"{fb['status_counts'].get('429', 0)} of {fb['count']} / "
            f"{chat['status_counts'].get('429', 0)} of {chat['count']}",
        )
        stored = await self.stored([big.ours])
        self.check_stored(section, "stored = sandbox", stored, big.expected)

    # --- 4. many sellers ----------------------------------------------------------------------

    async def many_sellers(self, big: Tenant) -> None:
        n, spec, tick = self.opts.sellers, self.opts.small(), self.opts.tick_seconds
        section = self.report.section(f"4. {n} sellers × ≈5,000 items, one tick")
        say(
            f"{n} sellers × ({spec['reviews']:,} reviews + {spec['questions']:,} questions + "
            f"{spec['chats']} chats × {spec['messages_per_chat']} messages), sandbox limits on, "
            f"our defaults; SYNC_TICK_SECONDS={tick:g}"
        )
        await self.fresh_state()
        await self.admin.put("/_sandbox/rate-limits", json=SANDBOX_LIMITS_ON)
        async with self.maker() as session:  # only the small sellers are due
            await session.execute(
                update(Seller)
                .where(Seller.id == big.ours)
                .values(next_sync_at=datetime.now(UTC) + timedelta(days=1))
            )
            await session.commit()
        tenants = [
            await self.tenant(f"bench-small-{i:02d}", 1000 + i, spec, next_sync_at=None)
            for i in range(n)
        ]
        ids = [t.ours for t in tenants]

        def publish() -> None:
            self.broker.send_task("sync.tick")

        def load() -> Awaitable[list[RunRow]]:
            return self.runs_where(SyncRun.seller_id.in_(ids))

        result, t0 = await self.measure("tick", publish, load, 3 * n, MULTI_TIMEOUT)
        runs = result.runs
        end = t0 + timedelta(seconds=result.wall)

        def since_tick(moment: datetime | None) -> float:
            return ((moment or end) - t0).total_seconds()

        waits = [since_tick(r.started_at) for r in runs]
        per_seller: dict[int, list[RunRow]] = {}
        for r in runs:
            per_seller.setdefault(r.seller_id, []).append(r)
        section.check("runs queued by the tick", str(len(runs)), str(3 * n), len(runs) == 3 * n)
        self.check_runs(section, "tick", runs)
        section.info(
            "tick published → its runs created", fmt_s(max(since_tick(r.created_at) for r in runs))
        )
        section.info("wait tick → started_at, p95 over all runs", fmt_s(nearest_rank(waits, 0.95)))
        section.check(
            "wait tick → started_at, max over all runs",
            fmt_s(max(waits)),
            f"≤ 1 beat interval ({tick:g} s)",
            max(waits) <= tick,
        )
        firsts = [min(since_tick(r.started_at) for r in rs) for rs in per_seller.values()]
        section.info("wait until a seller's first run starts, max over sellers", fmt_s(max(firsts)))
        section.info(f"wall time until all {len(runs)} runs are final", fmt_s(result.wall))
        durations = [r.duration for r in runs]
        section.info(
            "run duration, median / max",
            f"{statistics.median(durations):.2f} s / {max(durations):.2f} s",
        )
        section.info(
            "items fetched",
            f"{result.fetched:,} ({result.fetched / result.wall:,.0f} items/s over the wall time)",
        )
        logs = [
            (await self.admin.get(f"/_sandbox/sellers/{t.sandbox_id}/requests")).json()
            for t in tenants
        ]
        worst_1s = max(log["by_group"]["feedbacks"]["max_in_any_1s"] for log in logs)
        worst_10s = max(log["by_group"]["chat"]["max_in_any_10s"] for log in logs)
        sandbox_429 = sum(
            log["by_group"][g]["status_counts"].get("429", 0)
            for log in logs
            for g in ("feedbacks", "chat")
        )
        section.info(
            "429 answers: sandbox / our `rate_limited`",
            f"{sandbox_429} / {sum(r.rate_limited for r in runs)}",
        )
        section.check(
            "sandbox, worst seller: feedbacks in any 1 s / chat in any 10 s",
            f"{worst_1s} / {worst_10s}",
            f"≤ {SANDBOX_MAX_FEEDBACKS_1S} / ≤ {SANDBOX_MAX_CHAT_10S}",
            worst_1s <= SANDBOX_MAX_FEEDBACKS_1S and worst_10s <= SANDBOX_MAX_CHAT_10S,
        )
        memory = result.memory
        section.info(
            "peak RSS largest pool process / PSS sum of the worker",
            f"{fmt_mb(memory.largest_pool_rss)} / {fmt_mb(memory.total_pss)}",
        )
        cpu = result.cpu
        section.info(
            "CPU s: worker / postgres / sandbox",
            " / ".join(
                f"{cpu.get(k, float('nan')):.1f}"
                for k in ("worker, all processes", "postgres, all backends", "sandbox")
            ),
        )
        expected = {k: sum(t.expected[k] for t in tenants) for k in tenants[0].expected}
        self.check_stored(
            section, "stored = sandbox, all sellers", await self.stored(ids), expected
        )

        lines = [
            f"### Scenario 4 per seller (seconds from the tick; beat interval {tick:g} s)",
            "",
            "| seller | runs | first start | last start (max wait) | last finish | items |",
            "|---|---|---|---|---|---|",
        ]
        for i, tenant in enumerate(tenants):
            rs = per_seller.get(tenant.ours, [])
            starts = [since_tick(r.started_at) for r in rs] or [float("nan")]
            finish = max((since_tick(r.finished_at) for r in rs), default=float("nan"))
            lines.append(
                f"| small-{i:02d} | {len(rs)} | {min(starts):.1f} | {max(starts):.1f} | "
                f"{finish:.1f} | {sum(r.fetched for r in rs):,} |"
            )
        self.report.blocks.append("\n".join(lines))


def _stage_row(channel: str, name: str, count: int, values: list[float], total: int) -> str:
    seconds = statistics.median(values)
    per_item = seconds / max(count, 1)
    cells = (
        channel,
        name,
        f"{count:,}",
        f"{seconds * 1000:.0f}",
        f"{per_item * 1e6:.0f}",
        f"{per_item * total:.1f} s",
    )
    return "| " + " | ".join(cells) + " |"


def _measured_row(run: RunRow | None) -> list[str]:
    if run is None:
        return []
    per_item = run.duration / max(run.fetched, 1)
    cells = (
        run.channel,
        "**the whole run in the worker (measured)**",
        f"{run.fetched:,}",
        "",
        f"{per_item * 1e6:.0f}",
        f"**{fmt_s(run.duration)}** ({run.requests} requests)",
    )
    return ["| " + " | ".join(cells) + " |"]


# --- main --------------------------------------------------------------------------------------


async def run_bench(opts: Options, report: Report) -> None:
    services = start_services()
    sandbox = SandboxServer()
    bench: Bench | None = None
    try:
        say(services.describe())
        await recreate_database(services)
        say("database sellerdesk_bench recreated; alembic upgrade head")
        migrate(services.database_url)
        flush_redis(services.redis_url)
        sandbox.start()
        say(f"sandbox on {sandbox.url}")
        bench = Bench(opts, services, sandbox, report)
        big = await bench.tenant(
            "bench-big", 1, opts.big(), next_sync_at=datetime.now(UTC) + timedelta(days=1)
        )
        say(f"seeded seller bench-big: {big.expected}")
        # The sync lane's worker (and control, for the tick): link recomputes have a lane and a
        # worker of their own, and would otherwise share these two processes with the syncs.
        bench.start_worker(queues="control,sync", SYNC_TICK_SECONDS=f"{opts.tick_seconds:g}")
        report.notes += [
            "worker: `python -m celery -A app.worker.celery_app worker --loglevel INFO "
            f"--concurrency 2` (prefork, as `make run`), SYNC_TICK_SECONDS={opts.tick_seconds:g}",
            f"{services.describe()}; sandbox `python -m app.sandbox` (real HTTP on 127.0.0.1, "
            "events page 1000)",
            "big seller in the sandbox: "
            + ", ".join(f"{k} {v:,}" for k, v in big.expected.items()),
        ]
        if "unthrottled" not in opts.skip:
            await bench.unthrottled(big)
            if "incremental" not in opts.skip:
                await bench.incremental(big)
            if "profile" not in opts.skip:
                await bench.profile(big)
            if "throttled" not in opts.skip:
                await bench.throttled(big)
        if "multi" not in opts.skip:
            await bench.many_sellers(big)
    finally:
        if bench is not None:
            if bench.worker is not None:
                say("stopping the worker, the sandbox and the servers")
                bench.worker.stop()
            await bench.close()
        sandbox.stop()
        services.stop()


def parse_args(argv: Sequence[str]) -> Options:
    parser = arg_parser("bench.sync_bench", __doc__)
    parser.add_argument("--repeat", type=int, default=3, help="unthrottled runs (default 3)")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="scale the big seller's data (the targets are for 1)",
    )
    parser.add_argument(
        "--tick-seconds",
        type=float,
        default=30.0,
        help="SYNC_TICK_SECONDS for the worker (app default 10)",
    )
    parser.add_argument("--sellers", type=int, default=20, help="scenario 4 sellers (default 20)")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["unthrottled", "incremental", "profile", "throttled", "multi"],
        help="leave a scenario out (throttled needs unthrottled)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.sellers < 1 or args.scale <= 0 or args.tick_seconds <= 0:
        parser.error("--repeat and --sellers must be ≥ 1, --scale and --tick-seconds > 0")
    return Options(args.repeat, args.scale, args.tick_seconds, args.sellers, frozenset(args.skip))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    opts, report = parse_args(args), Report()
    work, notes = run_bench(opts, report), scale_note(opts.scale)
    return run_main("bench.sync_bench", "Sync benchmark", args, work, report, notes)


if __name__ == "__main__":
    sys.exit(main())

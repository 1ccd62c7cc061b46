"""Dispatch benchmark (product.md §5): the reply endpoint's latency, and how many replies the worker
sends per second with rate limits off.

    .venv/bin/python -m bench.dispatch_bench [--requests 1000] [--replies 1500] [--repeat 3]

Everything real: the sandbox (`python -m app.sandbox`, HTTP on 127.0.0.1), the API (one uvicorn
process) and one Celery worker as `make run` starts them (prefork, `--concurrency 2`). Sandbox rate
limits are off and our limiter is overridden high (`seller_settings.rate_limits`) throughout. One
sandbox seller with only unanswered items, synced into our database through the worker first;
every reply goes to a distinct open item (70 % reviews, 25 % questions, 5 % chats).

1. Reply endpoint: `POST /api/v1/interactions/{id}/reply` (an operator's bearer token, an
   Idempotency-Key) from 8 concurrent clients, warm-up first. Each request locks the item, checks
   the guardrails, inserts the outbox row and an event, commits and then publishes `dispatch.send`.
   (a) with the worker consuming: it sends the replies meanwhile, as deployed;
   (b) with the worker's consumer paused (the endpoint alone), resumed afterwards.
   p50/p95/p99, req/s, CPU per request; then: every reply sent, each item delivered once.
2. Dispatch throughput: `--replies` replies queued in the outbox in-process (the service the
   endpoint calls; not timed), then one `dispatch.send` per reply published at once; wall = first
   publish → last `sent_at`, `--repeat` times. Every row `sent` on its first attempt, the sandbox's
   deliveries exactly 1 per item and none elsewhere.

No targets: the numbers are reported, and a failed check (a reply not sent, an item delivered
twice) prints MISSED. Postgres/Redis are BENCH_DATABASE_URL / BENCH_REDIS_URL when set, else
embedded ones under `.data/bench/dispatch/`; the database `sellerdesk_bench_dispatch` is dropped
and created, the Redis database flushed.
"""

import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import httpx
from redis import Redis
from sqlalchemy import func, select, text

import app.models  # noqa: F401 - every table in the metadata, or foreign keys cannot resolve
from app.auth import service as auth_service
from app.auth.service import Credential, Principal
from app.connectors.wildberries.client import WildberriesClient
from app.connectors.wildberries.limits import CHAT, FEEDBACKS
from app.core.db import create_sessionmaker
from app.core.egress import EgressPolicy
from app.core.ratelimit import RateLimiter
from app.core.redis import create_redis
from app.dispatch import service as dispatch_service
from app.dispatch.models import OutboundReply
from app.dispatch.schemas import ReplyCreate
from app.drafts import guardrails
from app.interactions.models import Interaction
from app.sync.models import FINAL_RUN_STATUSES as SYNC_FINAL
from app.sync.models import SyncRun
from app.worker import lanes, names
from bench.report import (
    Fetched,
    Latencies,
    LoadClient,
    Report,
    Section,
    arg_parser,
    drive,
    fmt_s,
    nearest_rank,
    run_main,
)
from bench.stack import (
    DATA,
    ApiServer,
    BenchError,
    Harness,
    SandboxServer,
    Services,
    Tenant,
    api_env,
    flush_redis,
    login,
    migrate,
    poll,
    recreate_database,
    say,
    start_services,
)

DATABASE = "sellerdesk_bench_dispatch"
DISPATCH_DATA = DATA / "dispatch"  # its own embedded servers: never stops another benchmark's
API = "/api/v1"
EMAIL = "bench-dispatcher@example.com"
PASSWORD = "bench-only-password"  # noqa: S105 - a throwaway database's operator
SECRETS_KEY = "sellerdesk-bench-only-secrets-key"
JWT_SECRET = "sellerdesk-bench-only-jwt-secret"  # noqa: S105 - fixed, so the token is reproducible
QUEUE = lanes.REPLIES.name  # where reply sends wait (the bench pauses its consumer)

CHANNELS = ("review", "question", "chat")
SHARES = {"question": 0.25, "chat": 0.05}  # the rest: reviews
# Limits off: the sandbox's switched off, ours overridden far above what the worker reaches.
LIMIT_OFF = {"rate": 10_000, "burst": 1_000}
OVERRIDE = {FEEDBACKS: LIMIT_OFF, CHAT: LIMIT_OFF}
TEXTS = {  # what an operator sends; each passes the channel's guardrails (checked at start)
    "review": "Здравствуйте! Спасибо за отзыв, рады, что товар понравился.",
    "question": "Здравствуйте! Спасибо за вопрос. Замеры каждого размера есть в таблице на "
    "карточке товара.",
    "chat": "Здравствуйте! Спасибо, что написали. Уточните, пожалуйста, номер заказа.",
}
SANDBOX_SEED = 7
PICK_SEED = 0.42  # Postgres setseed(): the same items for the same data

# Timeouts (s): every wait ends.
REQUEST_TIMEOUT = 30.0
SCENARIO_TIMEOUT = 300.0  # per endpoint scenario: warm-up + measured requests
SYNC_TIMEOUT = 300.0
IDLE_TIMEOUT = 120.0
DRAIN_TIMEOUT = 300.0
MIN_DISPATCH_TIMEOUT = 300.0
CLIENT_SAMPLES = 20


# --- options -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    requests: int
    warmup: int
    concurrency: int
    replies: int
    repeat: int

    def batches(self) -> list[tuple[str, int]]:
        """The item sets, in the order they are used: each item is replied to once."""
        endpoint = [("1a warm-up", self.warmup), ("1a", self.requests)]
        endpoint += [("1b warm-up", self.warmup), ("1b", self.requests)]
        return endpoint + [(f"2 run {i}", self.replies) for i in range(1, self.repeat + 1)]


def split(n: int) -> dict[str, int]:
    """`n` items as reviews, questions and chats (70 / 25 / 5 %)."""
    questions, chats = round(n * SHARES["question"]), round(n * SHARES["chat"])
    return {"review": n - questions - chats, "question": questions, "chat": chats}


def parse_args(argv: Sequence[str]) -> Options:
    parser = arg_parser("bench.dispatch_bench", __doc__)
    parser.add_argument(
        "--requests", type=int, default=1000, help="measured reply requests per scenario (1000)"
    )
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured, per scenario (100)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument("--replies", type=int, default=1500, help="replies per dispatch run (1500)")
    parser.add_argument("--repeat", type=int, default=3, help="dispatch runs (3)")
    args = parser.parse_args(argv)
    if min(args.requests, args.concurrency, args.replies, args.repeat) < 1 or args.warmup < 0:
        parser.error("--requests, --concurrency, --replies and --repeat must be ≥ 1")
    return Options(args.requests, args.warmup, args.concurrency, args.replies, args.repeat)


# --- items and replies -------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    id: int
    channel: str
    external_id: str  # what the sandbox's deliveries are keyed by (review/question id, chat id)


@dataclass
class ReplyRow:
    """An outbox row as read back."""

    id: int
    state: str
    attempts: int
    confirmed_by: str | None
    sending_since: datetime | None
    sent_at: datetime | None

    @property
    def attempt(self) -> float:
        """Claimed (`sending`) → recorded `sent`, seconds."""
        if self.sending_since is None or self.sent_at is None:
            return float("nan")
        return (self.sent_at - self.sending_since).total_seconds()


def _states(rows: Sequence[ReplyRow]) -> str:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    return ", ".join(f"{n:,} {s}" for s, n in sorted(counts.items())) or "no rows"


def _final(rows: Sequence[ReplyRow], expected: int) -> bool:
    return len(rows) >= expected and all(r.state in ("sent", "dead") for r in rows)


def _mix(items: Sequence[Item]) -> str:
    counts = {c: sum(1 for i in items if i.channel == c) for c in CHANNELS}
    return ", ".join(f"{n:,} {c}s" for c, n in counts.items())


@dataclass
class Dispatched:
    """One dispatch run: K replies published at once."""

    wall: float  # first publish → last sent_at
    publish: float  # publishing the K tasks
    rows: list[ReplyRow]
    cpu: dict[str, float]
    sandbox: dict[str, Any] = field(default_factory=dict)  # its request log summary

    @property
    def rate(self) -> float:
        return len(self.rows) / self.wall if self.wall > 0 else float("nan")


# --- the benchmark -----------------------------------------------------------------------------


class Bench(Harness):
    def __init__(
        self, opts: Options, services: Services, sandbox: SandboxServer, report: Report
    ) -> None:
        super().__init__(services, sandbox, SECRETS_KEY, DISPATCH_DATA)
        self.opts = opts
        self.report = report
        self.sessions = create_sessionmaker(self.engine)  # as the app makes them
        self.api: ApiServer | None = None
        self.tenant_: Tenant | None = None
        self.principal: Principal | None = None

    @property
    def seller(self) -> Tenant:
        assert self.tenant_ is not None
        return self.tenant_

    def alive(self) -> None:
        assert self.worker is not None
        self.worker.check_alive()
        if self.api is not None:
            self.api.check_alive()

    # --- setup ---------------------------------------------------------------------------------

    async def seed(self) -> dict[str, list[Item]]:
        """The sandbox seller (nothing answered), ours synced from it through the worker, and the
        operator; the items every batch replies to, by batch."""
        needs = dict.fromkeys(CHANNELS, 0)
        for _, n in self.opts.batches():
            for channel, k in split(n).items():
                needs[channel] += k
        spec = {
            "reviews": needs["review"] + 50,
            "questions": needs["question"] + 50,
            "chats": 2 * needs["chat"] + 20,  # a chat is open when the buyer wrote last
            "messages_per_chat": 4,
            "answered_ratio": {"review": 0.0, "question": 0.0},
        }
        await self.admin.put("/_sandbox/rate-limits", json={"enabled": False})
        tenant = await self.tenant("bench-dispatch", SANDBOX_SEED, spec, next_sync_at=None)
        self.tenant_ = tenant
        await self.set_limits(tenant, OVERRIDE)
        async with self.sessions() as session:
            user = await auth_service.create_user(
                session, seller_id=tenant.ours, email=EMAIL, password=PASSWORD, role="owner"
            )
            await session.commit()
        self.principal = Principal(
            user_id=user.id, seller_id=tenant.ours, role="owner", credential=Credential.SESSION
        )
        say(f"sandbox seller: {tenant.expected}; needed {needs}")

        started = time.monotonic()
        run_ids = await self.queue_runs(tenant.ours)
        for run_id in run_ids:
            self.broker.send_task("sync.run", args=[run_id])

        async def load() -> list[str]:
            async with self.sessions() as session:
                rows = await session.scalars(select(SyncRun.status).where(SyncRun.id.in_(run_ids)))
                return list(rows)

        statuses = await poll(
            "seed sync",
            load,
            lambda s: len(s) == len(run_ids) and all(x in SYNC_FINAL for x in s),
            lambda s: ", ".join(s),
            SYNC_TIMEOUT,
            self.alive,
        )
        synced = time.monotonic() - started
        await self.wait_idle("after the seed sync")
        stored = await self.stored([tenant.ours])
        section = self.report.section("0. seed")
        section.info(
            "sandbox seller (nothing answered)",
            ", ".join(f"{k} {v:,}" for k, v in tenant.expected.items()),
        )
        ok = statuses == ["succeeded"] * 3 and stored == tenant.expected
        section.check(
            "synced through the worker (3 `sync.run`) = sandbox",
            f"runs {', '.join(statuses)} in {fmt_s(synced)}; stored "
            + ", ".join(f"{k} {v:,}" for k, v in stored.items()),
            "equal",
            ok,
        )
        if not ok:
            raise BenchError("the seed sync did not store what the sandbox holds")
        return await self.pick(needs)

    async def pick(self, needs: dict[str, int]) -> dict[str, list[Item]]:
        """Distinct open items (chats: with a reply sign), shuffled reproducibly, cut into the
        batches; each batch interleaves its channels."""
        pools: dict[str, list[Item]] = {}
        async with self.sessions() as session:
            await session.execute(text(f"SELECT setseed({PICK_SEED})"))
            for channel in CHANNELS:
                query = select(Interaction.id, Interaction.external_id).where(
                    Interaction.seller_id == self.seller.ours,
                    Interaction.channel == channel,
                    Interaction.status == "open",
                )
                if channel == "chat":
                    query = query.where(Interaction.extra["reply_sign"].astext.is_not(None))
                rows = await session.execute(query.order_by(func.random()).limit(needs[channel]))
                pools[channel] = [Item(int(i), channel, str(e)) for i, e in rows]
                if len(pools[channel]) < needs[channel]:
                    raise BenchError(
                        f"only {len(pools[channel])} open {channel}s, {needs[channel]} needed"
                    )
        shuffle = random.Random(SANDBOX_SEED)  # noqa: S311 - a reproducible order, not a secret
        batches: dict[str, list[Item]] = {}
        for name, n in self.opts.batches():
            batch = [pools[c].pop() for c, k in split(n).items() for _ in range(k)]
            shuffle.shuffle(batch)
            batches[name] = batch
        return batches

    async def wait_idle(self, label: str) -> None:
        """Until the queue is empty and the worker runs nothing (twice in a row, 0.5 s apart):
        a sync also queues link recomputes."""
        inspect = self.broker.control.inspect(timeout=2.0, limit=1)  # one worker
        redis = Redis.from_url(self.services.redis_url, socket_timeout=5)
        idle_twice = 0

        async def load() -> int:
            nonlocal idle_twice
            queued = sum(int(redis.llen(lane.name)) for lane in lanes.LANES)
            active = inspect.active() or {}
            reserved = inspect.reserved() or {}
            busy = queued + sum(len(t) for t in [*active.values(), *reserved.values()])
            idle_twice = idle_twice + 1 if busy == 0 else 0
            return busy

        try:
            await poll(
                f"waiting for an idle worker ({label})",
                load,
                lambda _: idle_twice >= 2,
                lambda busy: f"{busy} tasks queued or running",
                IDLE_TIMEOUT,
                self.alive,
                interval=0.5,
            )
        finally:
            redis.close()

    def consume(self, on: bool) -> None:
        """Resume / pause the worker's consumer of the task queue (remote control)."""
        control = self.broker.control
        # limit=1: return on our one worker's answer, not after the whole timeout
        if on:
            replies = control.add_consumer(QUEUE, reply=True, timeout=5.0, limit=1)
        else:
            replies = control.cancel_consumer(QUEUE, reply=True, timeout=5.0, limit=1)
        if not replies:
            raise BenchError(f"the worker did not answer {'add' if on else 'cancel'}_consumer")

    # --- reading back --------------------------------------------------------------------------

    async def rows(self, reply_ids: Sequence[int]) -> list[ReplyRow]:
        async with self.sessions() as session:
            result = await session.execute(
                select(
                    OutboundReply.id,
                    OutboundReply.state,
                    OutboundReply.attempts,
                    OutboundReply.confirmed_by,
                    OutboundReply.sending_since,
                    OutboundReply.sent_at,
                ).where(OutboundReply.id.in_(reply_ids))
            )
            return [ReplyRow(*row) for row in result]

    async def rows_of_items(self, items: Sequence[Item]) -> list[ReplyRow]:
        async with self.sessions() as session:
            ids = await session.scalars(
                select(OutboundReply.id).where(
                    OutboundReply.interaction_id.in_([i.id for i in items])
                )
            )
            return await self.rows(list(ids))

    async def wait_sent(
        self, label: str, reply_ids: Sequence[int], limit_s: float
    ) -> list[ReplyRow]:
        return await poll(
            label,
            lambda: self.rows(reply_ids),
            lambda rows: _final(rows, len(reply_ids)),
            _states,
            limit_s,
            self.alive,
            not_done="replies not final",
        )

    async def deliveries(self) -> dict[str, dict[str, int]]:
        response = await self.admin.get(f"/_sandbox/sellers/{self.seller.sandbox_id}/deliveries")
        response.raise_for_status()
        return cast(dict[str, dict[str, int]], response.json())

    async def forget_deliveries(self) -> None:
        base = f"/_sandbox/sellers/{self.seller.sandbox_id}"
        (await self.admin.delete(f"{base}/deliveries")).raise_for_status()
        (await self.admin.delete(f"{base}/requests")).raise_for_status()

    async def check_delivered(self, section: Section, items: Sequence[Item]) -> None:
        """The sandbox saw exactly one answer or message per item, and none to anything else."""
        seen = await self.deliveries()
        wrong = [i for i in items if seen.get(i.channel, {}).get(i.external_id) != 1]
        total = sum(sum(by_id.values()) for by_id in seen.values())
        measured = f"{total:,} deliveries for {len(items):,} items"
        if wrong:
            sample = ", ".join(
                f"{i.channel} {i.external_id}: {seen.get(i.channel, {}).get(i.external_id, 0)}"
                for i in wrong[:3]
            )
            measured += f"; {len(wrong):,} items not exactly once ({sample})"
        section.check(
            "sandbox deliveries", measured, "exactly 1 per item", not wrong and total == len(items)
        )

    def check_sent(self, section: Section, rows: Sequence[ReplyRow], expected: int) -> None:
        retried = sum(1 for r in rows if r.attempts != 1 or r.confirmed_by != "sent")
        measured = _states(rows) + (
            f"; {retried:,} not sent on the first attempt" if retried else ""
        )
        ok = len(rows) == expected and all(r.state == "sent" for r in rows) and not retried
        section.check("outbox rows", measured, f"{expected:,} `sent`, 1 attempt each", ok)

    # --- 1. the reply endpoint -----------------------------------------------------------------

    async def endpoint(
        self, client: LoadClient, batches: dict[str, list[Item]], variant: str
    ) -> None:
        consuming = variant == "1a"
        what = "worker consuming (sends meanwhile)" if consuming else "worker's consumer paused"
        section = self.report.section(f"{variant}. POST /reply, {what}")
        warm, items = batches[f"{variant} warm-up"], batches[variant]
        everything = [*warm, *items]
        await self.forget_deliveries()
        if not consuming:
            self.consume(False)
        say(
            f"{variant}: {len(warm)} warm-up + {len(items):,} measured POST /reply at "
            f"concurrency {self.opts.concurrency}, {what}; {_mix(items)}"
        )

        def send(batch: Sequence[Item]) -> Callable[[int], Awaitable[Fetched]]:
            def one(i: int) -> Awaitable[Fetched]:
                item = batch[i]
                return client.post(
                    f"{API}/interactions/{item.id}/reply",
                    json={"text": TEXTS[item.channel]},
                    headers={"Idempotency-Key": f"bench-{item.id}"},
                )

            return one

        def describe(batch: Sequence[Item]) -> Callable[[int], str]:
            return lambda i: f"POST /interactions/{batch[i].id}/reply ({batch[i].channel})"

        deadline = time.monotonic() + SCENARIO_TIMEOUT
        warmed = Latencies(ok_status=201)
        await drive(send(warm), describe(warm), len(warm), self.opts.concurrency, deadline, warmed)
        assert self.api is not None
        self.alive()
        result = Latencies(ok_status=201)
        before = self.cpu_snapshot(self.api)
        started = time.perf_counter()
        finished = await drive(
            send(items), describe(items), len(items), self.opts.concurrency, deadline, result
        )
        result.wall = time.perf_counter() - started
        end = datetime.now(UTC)
        after = self.cpu_snapshot(self.api)
        result.stopped_early = not finished
        rows = await self.rows_of_items(everything)
        sent_meanwhile = sum(1 for r in rows if r.sent_at is not None and r.sent_at <= end)
        self.alive()

        n = max(len(result.latencies), 1)
        cpu = {k: (after[k] - before[k]) / n * 1000 for k in after if k in before}
        count = f"{result.count:,}" + (" (time limit)" if result.stopped_early else "")
        section.check(
            "requests measured (after warm-up), non-201",
            f"{count}, {result.non_ok} non-201"
            + (f" (warm-up: {warmed.non_ok} non-201)" if warmed.non_ok else ""),
            f"{len(items):,}, 0",
            result.count == len(items) and result.non_ok == 0 and warmed.non_ok == 0,
        )
        for error in [*warmed.errors, *result.errors][:3]:
            say(f"    {error}")
        section.info(
            "latency p50 / p95 / p99 (client-side)",
            f"{result.pct(0.5):.1f} / **{result.pct(0.95):.1f}** / {result.pct(0.99):.1f} ms",
        )
        section.info("throughput", f"{len(result.latencies) / result.wall:,.0f} req/s")
        section.info(
            "CPU ms per request: API / Postgres / worker / sandbox / benchmark",
            " / ".join(
                f"{cpu.get(k, float('nan')):.2f}"
                for k in (
                    "API",
                    "postgres, all backends",
                    "worker, all processes",
                    "sandbox",
                    "benchmark process (sampler, polling)",
                )
            ),
        )
        section.info(
            "API process busy",
            f"{(after['API'] - before['API']) / result.wall:.0%} of one CPU",
        )
        section.info(
            "replies sent by the worker by the end of the window",
            f"{sent_meanwhile:,} of {len(everything):,} (warm-up included)",
        )

        resumed = time.monotonic()
        if not consuming:
            self.consume(True)
        reply_ids = [r.id for r in await self.rows_of_items(everything)]
        final = await self.wait_sent(f"{variant} sending", reply_ids, DRAIN_TIMEOUT)
        drained = time.monotonic() - resumed
        section.info(
            "then until all are sent"
            + (" (consumer resumed)" if not consuming else " (after the last response)"),
            f"{fmt_s(drained)} for {len(everything):,} replies incl. warm-up"
            + (f" ({len(everything) / drained:,.0f}/s)" if not consuming else ""),
        )
        self.check_sent(section, final, len(everything))
        await self.check_delivered(section, everything)

    async def client_cpu_ms(self) -> float:
        """CPU to construct the connector's client, as `sender.send` does for every reply."""
        redis = create_redis(self.services.redis_url)
        samples = []
        try:
            for _ in range(CLIENT_SAMPLES):
                started = time.process_time()
                client = WildberriesClient(
                    token=self.seller.token,
                    seller_id=self.seller.ours,
                    limiter=RateLimiter(redis),
                    feedbacks_url=self.sandbox.url,
                    chat_url=self.sandbox.url,
                    policy=EgressPolicy.from_settings(self.settings),
                )
                samples.append((time.process_time() - started) * 1000)
                await client.aclose()
        finally:
            await redis.aclose()
        return statistics.median(samples)

    # --- 2. dispatch throughput ----------------------------------------------------------------

    async def queue(self, items: Sequence[Item]) -> list[int]:
        """The outbox rows, through the service the endpoint calls, committed without publishing
        (its deferred tasks are dropped: the benchmark publishes them itself)."""
        assert self.principal is not None
        ids = []
        async with self.sessions() as session:
            for item in items:
                body = ReplyCreate(text=TEXTS[item.channel])
                reply, _ = await dispatch_service.queue_reply(
                    session, self.principal, item.id, body, None
                )
                ids.append(reply.id)
            session.info.clear()
            await session.commit()
        return ids

    async def dispatch_run(self, label: str, items: Sequence[Item]) -> Dispatched:
        await self.forget_deliveries()
        started = time.monotonic()
        reply_ids = await self.queue(items)
        say(f"{label}: {len(reply_ids):,} replies queued in {fmt_s(time.monotonic() - started)}")
        before = self.cpu_snapshot()
        t0 = datetime.now(UTC)
        published = time.perf_counter()
        for reply_id in reply_ids:
            self.broker.send_task(names.DISPATCH_SEND, args=[reply_id])
        publish = time.perf_counter() - published
        limit = max(MIN_DISPATCH_TIMEOUT, len(reply_ids) / 5)
        rows = await self.wait_sent(label, reply_ids, limit)
        after = self.cpu_snapshot()
        end = max((r.sent_at for r in rows if r.sent_at is not None), default=t0)
        log = (await self.admin.get(f"/_sandbox/sellers/{self.seller.sandbox_id}/requests")).json()
        cpu = {k: after[k] - before[k] for k in after if k in before}
        return Dispatched((end - t0).total_seconds(), publish, rows, cpu, log)

    async def throughput(self, batches: dict[str, list[Item]]) -> None:
        k = self.opts.replies
        section = self.report.section(f"2. dispatch, limits off, {k:,} replies at once")
        runs: list[Dispatched] = []
        for i in range(1, self.opts.repeat + 1):
            items = batches[f"2 run {i}"]
            result = await self.dispatch_run(f"dispatch run {i}/{self.opts.repeat}", items)
            runs.append(result)
            attempts = [r.attempt for r in result.rows]
            say(
                f"  run {i}: {fmt_s(result.wall)}, {result.rate:,.1f} replies/s; send attempt "
                f"p50 {statistics.median(attempts) * 1000:.0f} ms"
            )
            self.check_sent(section, result.rows, len(items))
            await self.check_delivered(section, items)
            groups = result.sandbox.get("by_group", {})
            limited = sum(g["status_counts"].get("429", 0) for g in groups.values())
            section.check(
                f"run {i}: sandbox 429 answers",
                str(limited),
                "0 (limits off)",
                limited == 0,
            )

        walls = [r.wall for r in runs]
        rates = [r.rate for r in runs]
        note = f" (N = {len(runs)}: p95 = the slowest run)" if len(runs) < 20 else ""
        section.info("replies per run", _mix(batches["2 run 1"]))
        section.info(f"wall time of the {len(runs)} runs", " / ".join(fmt_s(w) for w in walls))
        section.info(
            f"wall first publish → last `sent`, median / p95{note}",
            f"{fmt_s(statistics.median(walls))} / {fmt_s(nearest_rank(walls, 0.95))}",
        )
        section.info(
            "**replies/s**, median / slowest run",
            f"**{statistics.median(rates):,.1f}** / {min(rates):,.1f}",
        )
        median = sorted(runs, key=lambda r: r.wall)[(len(runs) - 1) // 2]
        attempts = [r.attempt * 1000 for r in median.rows]
        section.info(
            "median run: one send attempt (claimed → recorded `sent`), p50 / p95 / max",
            f"{nearest_rank(attempts, 0.5):.0f} / {nearest_rank(attempts, 0.95):.0f} / "
            f"{max(attempts):.0f} ms",
        )
        section.info(
            "median run: publishing the tasks",
            f"{fmt_s(median.publish)} ({len(median.rows) / median.publish:,.0f} tasks/s)",
        )
        groups = median.sandbox.get("by_group", {})
        section.info(
            "median run: sandbox requests, feedbacks / chat",
            " / ".join(f"{groups.get(g, {}).get('count', 0):,}" for g in ("feedbacks", "chat")),
        )
        n = len(median.rows)
        section.info(
            "median run: CPU ms per reply: worker / Postgres / sandbox / Redis / benchmark",
            " / ".join(
                f"{median.cpu.get(key, float('nan')) / n * 1000:.2f}"
                for key in (
                    "worker, all processes",
                    "postgres, all backends",
                    "sandbox",
                    "redis",
                    "benchmark process (sampler, polling)",
                )
            ),
        )
        section.info(
            "one `WildberriesClient` built (the sender builds one per reply: httpx.AsyncClient, "
            "its SSL context and CA bundle), CPU",
            f"{await self.client_cpu_ms():.1f} ms (median of {CLIENT_SAMPLES}, in the benchmark "
            "process)",
        )
        section.info(
            "median run: worker busy",
            f"{median.cpu['worker, all processes'] / median.wall:.0%} of one CPU "
            f"(2 pool processes + main)",
        )


class DispatchReport(Report):
    def verdict(self) -> str:
        missed = self.missed()
        if missed:
            return f"**{len(missed)} check(s) MISSED.**"
        return "All checks passed (the dispatcher has no performance targets yet)."


# --- main --------------------------------------------------------------------------------------


async def run_bench(opts: Options, report: Report) -> None:
    for channel, reply in TEXTS.items():
        findings = guardrails.check(reply, cast(guardrails.Channel, channel), customer_text="")
        if guardrails.blocking(findings):
            raise BenchError(f"the {channel} text breaks the guardrails: {findings}")
    DISPATCH_DATA.mkdir(parents=True, exist_ok=True)
    services = start_services(DATABASE, DISPATCH_DATA)
    sandbox = SandboxServer(log=DISPATCH_DATA / "sandbox.log")
    bench: Bench | None = None
    try:
        say(services.describe())
        await recreate_database(services)
        say(f"database {DATABASE} recreated; alembic upgrade head")
        migrate(services.database_url)
        flush_redis(services.redis_url)
        sandbox.start()
        say(f"sandbox on {sandbox.url}")
        bench = Bench(opts, services, sandbox, report)
        bench.start_worker()
        batches = await bench.seed()
        report.notes += [
            "worker: `python -m celery -A app.worker.celery_app worker --loglevel INFO "
            "--concurrency 2` (prefork, as `make run`); no beat (no `dispatch.sweep`)",
            f"{services.describe()}; sandbox `python -m app.sandbox` (real HTTP on 127.0.0.1)",
            "limits off: sandbox rate limits disabled; ours overridden by "
            f"`seller_settings.rate_limits` = `{json.dumps(OVERRIDE)}`",
        ]

        bench.api = ApiServer(api_env(services, SECRETS_KEY, JWT_SECRET), DISPATCH_DATA / "api.log")
        bench.api.start()
        say(f"API up (pid {bench.api.pid}, one process); log {bench.api.log}")
        report.notes += [
            "API: `python -m uvicorn --factory app.main:asgi` — one process (uvloop + httptools), "
            "ENV=production, LOG_LEVEL=WARNING",
            f"1a/1b load: {opts.concurrency} concurrent clients on one aiohttp.ClientSession "
            "(`bench.report.LoadClient`: keep-alive, one connection per client; ≈ 0.1 ms of "
            "client CPU per request against a minimal server, httpx.AsyncClient ≈ 1.2 ms) in the "
            "benchmark process, each POST on a distinct open item with an "
            f"Idempotency-Key; {opts.warmup} warm-up requests, then {opts.requests:,} measured "
            "(client-side: request sent → body read); CPU ms/request = the process (tree)'s CPU "
            "seconds in the measured window ÷ requests",
            "2: replies queued in-process through `app.dispatch.service.queue_reply` (the "
            "endpoint's service; not timed), then one `dispatch.send` per reply published from "
            "the benchmark; wall = first publish → the last row's `sent_at`",
        ]
        async with httpx.AsyncClient(base_url=bench.api.url, timeout=REQUEST_TIMEOUT) as client:
            token = await login(client, EMAIL, PASSWORD)
        async with LoadClient(
            bench.api.url,
            connections=opts.concurrency,
            timeout=REQUEST_TIMEOUT,
            headers={"Authorization": f"Bearer {token}"},
        ) as load:
            # The client's long-lived heap out of the collector's reach (as the inbox benchmark).
            gc.collect()
            gc.freeze()
            for variant in ("1a", "1b"):
                await bench.endpoint(load, batches, variant)
                await bench.wait_idle(f"after {variant}")
        bench.api.stop()
        bench.api = None
        say("API stopped")
        await bench.throughput(batches)
    finally:
        if bench is not None:
            say("stopping the API, the worker, the sandbox and the servers")
            if bench.api is not None:
                bench.api.stop()
            if bench.worker is not None:
                bench.worker.stop()
            await bench.close()
        sandbox.stop()
        services.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    opts, report = parse_args(args), DispatchReport()
    return run_main(
        "bench.dispatch_bench", "Dispatch benchmark", args, run_bench(opts, report), report
    )


if __name__ == "__main__":
    sys.exit(main())

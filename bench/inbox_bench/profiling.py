"""In-process analysis with the API stopped: the SQL captured at the driver and EXPLAINed, the
garbage collector's pauses, and where the time goes (thread CPU per app function, cProfile per
package, the SQL replayed alone)."""

import asyncio
import contextlib
import cProfile
import functools
import gc
import inspect
import os
import pstats
import re
import statistics
import sys
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import fastapi.routing as fastapi_routing
import greenlet  # type: ignore[import-untyped]
import httpx
from fastapi import FastAPI
from sqlalchemy import event

from bench.inbox_bench.app_api import (
    AUTH_MODULES,
    AUTH_STAGE,
    INSTRUMENTED,
    READ_FUNCTION,
    READ_STAGE,
    REPOSITORY_MODULES,
    SERVICE_MODULES,
    Settings,
    create_app,
    server_settings,
)
from bench.inbox_bench.corpus import SEARCHES
from bench.inbox_bench.options import (
    API,
    GC_RUN_REQUESTS,
    GC_RUN_TIMEOUT,
    PROFILE_TIMEOUT,
    REQUEST_TIMEOUT,
)
from bench.inbox_bench.report import Scenario
from bench.report import nearest_rank
from bench.stack import ROOT, BenchError, plain_url


@dataclass
class Captured:
    sql: str
    params: tuple[Any, ...]
    origin: str  # the app function that sent it (file:line name)


def _origin() -> str:
    """The innermost frame under app/ (outside app/core) of the coroutine waiting on this SQL.

    SQLAlchemy's asyncio layer runs the statement in a child greenlet; the caller's coroutine
    frames hang off the parent greenlet's suspended frame."""
    app_dir = str(ROOT / "app") + os.sep
    parent = greenlet.getcurrent().parent
    frame = parent.gr_frame if parent is not None else None
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(app_dir) and not name.startswith(app_dir + "core"):
            rel = os.path.relpath(name, ROOT)
            return f"{rel}:{frame.f_code.co_firstlineno} {frame.f_code.co_name}"
        frame = frame.f_back
    return "?"


@dataclass
class Timed:
    label: str  # file:line name
    module: str
    is_async: bool
    seconds: float = 0.0  # thread CPU
    calls: int = 0


class Instrument:
    """Thread CPU time per call of the app's service/repository functions, in this process only:
    each module attribute is replaced by a timing wrapper while the block runs, then restored.
    At concurrency 1 a coroutine's thread CPU between its start and its end is its own work
    (and its callees'): the waits on Postgres cost none."""

    def __init__(self) -> None:
        self.timed: dict[str, Timed] = {}
        self._restore: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> "Instrument":
        for name in INSTRUMENTED:
            module = sys.modules[name]
            for attr, fn in list(vars(module).items()):
                if inspect.isfunction(fn) and fn.__module__ == name and not attr.startswith("_"):
                    self._wrap(module, attr, fn, name)
        self._wrap(fastapi_routing, "serialize_response", fastapi_routing.serialize_response)
        return self

    def __exit__(self, *exc: object) -> None:
        for module, attr, original in reversed(self._restore):
            setattr(module, attr, original)
        self._restore.clear()

    def _wrap(self, module: Any, attr: str, fn: Any, name: str = "fastapi.routing") -> None:
        code = fn.__code__
        where = code.co_filename.removeprefix(str(ROOT) + os.sep)
        if "site-packages" in where:
            where = "fastapi/routing.py"
        timed = Timed(
            f"{where}:{code.co_firstlineno} {attr}", name, inspect.iscoroutinefunction(fn)
        )
        self.timed[timed.label] = timed
        wrapper: Any
        if timed.is_async:

            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.thread_time()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    timed.seconds += time.thread_time() - started
                    timed.calls += 1

        else:

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.thread_time()
                try:
                    return fn(*args, **kwargs)
                finally:
                    timed.seconds += time.thread_time() - started
                    timed.calls += 1

        functools.update_wrapper(wrapper, fn)
        self._restore.append((module, attr, fn))
        setattr(module, attr, wrapper)


class InProcess:
    """The app served in this process through httpx.ASGITransport, its SQL captured at the
    driver (the exact text and parameters asyncpg receives)."""

    def __init__(self, settings: Settings, token: str) -> None:
        self.settings = settings
        self.token = token
        self.app: FastAPI = create_app(settings)
        self.capturing = False
        self.captured: list[Captured] = []
        self._stack = contextlib.AsyncExitStack()
        self.client: httpx.AsyncClient | None = None
        self.db: Any = None  # a raw asyncpg connection for EXPLAIN and replays
        self._prepared: dict[str, Any] = {}  # its prepared statements by SQL
        self.app_cpu = 0.0  # thread CPU inside the ASGI app (seconds), see _timed_app

    async def __aenter__(self) -> "InProcess":
        await self._stack.enter_async_context(self.app.router.lifespan_context(self.app))
        event.listen(self.app.state.engine.sync_engine, "before_cursor_execute", self._on_sql)
        self.client = await self._stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self._timed_app),
                base_url="http://in-process",
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=REQUEST_TIMEOUT,
            )
        )
        self.db = await asyncpg.connect(
            plain_url(self.settings.require_database_url()),
            server_settings=server_settings(self.settings),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.db is not None:
            await self.db.close()
        await self._stack.aclose()

    async def _timed_app(self, scope: Any, receive: Any, send: Any) -> None:
        started = time.thread_time()
        try:
            await self.app(scope, receive, send)
        finally:
            self.app_cpu += time.thread_time() - started

    def _on_sql(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if self.capturing:
            self.captured.append(Captured(statement, tuple(parameters or ()), _origin()))

    async def get(self, url: str) -> httpx.Response:
        assert self.client is not None
        return await self.client.get(url)

    async def capture(self, url: str) -> list[Captured]:
        self.captured, self.capturing = [], True
        try:
            response = await self.get(url)
        finally:
            self.capturing = False
        if response.status_code != 200:
            raise BenchError(f"in-process {url}: {response.status_code} {response.text[:300]}")
        return self.captured

    async def explain(self, stmt: Captured) -> str:
        rows = await self.db.fetch(
            "EXPLAIN (ANALYZE, BUFFERS) " + stmt.sql, *stmt.params, timeout=REQUEST_TIMEOUT
        )
        return "\n".join(r[0] for r in rows)

    async def replay(self, stmt: Captured) -> float:
        """The statement alone on the driver, prepared once per connection as SQLAlchemy does
        (asyncpg's own cache skips statements over 15 kB, such as the search's, and would plan
        them at every call): seconds."""
        prepared = self._prepared.get(stmt.sql)
        if prepared is None:
            prepared = self._prepared[stmt.sql] = await self.db.prepare(stmt.sql)
        started = time.perf_counter()
        await prepared.fetch(*stmt.params, timeout=REQUEST_TIMEOUT)
        return time.perf_counter() - started


WAIT = "waiting (loop idle: Postgres, network)"
LOOP = "asyncio + socket I/O"
SQLA = "SQLAlchemy (build, execute, ORM rows)"
ASYNCPG = "asyncpg"
PYDANTIC = "pydantic (validate, serialize)"
WEB = "FastAPI/Starlette"
APP = "app/ own code"
CLIENT = "httpx client (in-process)"
OTHER = "other"
BUCKETS = (WAIT, LOOP, SQLA, ASYNCPG, PYDANTIC, WEB, APP, CLIENT, OTHER)

FuncKey = tuple[str, int, str]
StatsRow = tuple[int, int, float, float, dict[FuncKey, tuple[int, int, float, float]]]


def _bucket(filename: str, name: str) -> str:
    """The package a profiled function belongs to; OTHER for the standard library and builtins
    that no name ties to a package (those are then charged to their callers)."""
    if filename == "~":
        if "poll" in name and ("epoll" in name or "select" in name):
            return WAIT
        for needle, bucket in (
            ("_socket.socket", LOOP),
            ("asyncpg", ASYNCPG),
            ("pydantic", PYDANTIC),
            ("sqlalchemy", SQLA),
            ("greenlet", SQLA),  # SQLAlchemy's asyncio bridge
        ):
            if needle in name:
                return bucket
        return OTHER
    for needles, bucket in (
        (("/sqlalchemy/", "/greenlet/"), SQLA),
        (("/asyncpg/",), ASYNCPG),
        (("/pydantic/", "/pydantic_core/"), PYDANTIC),
        (("/fastapi/", "/starlette/"), WEB),
        (("/httpx/", "/httpcore/", "/h11/", "/anyio/"), CLIENT),
        (("/asyncio/", "/selectors.py"), LOOP),
    ):
        if any(n in filename for n in needles):
            return bucket
    if filename.startswith(str(ROOT / "app")):
        return APP
    return OTHER


def attribute(raw: dict[FuncKey, StatsRow]) -> dict[str, float]:
    """Own time per bucket (seconds). A function in OTHER (isinstance, copy.copy, typing…) is
    charged to its callers' buckets in proportion to the time it spent under each (two levels)."""
    own = {key: _bucket(key[0], key[2]) for key in raw}

    def resolved(key: FuncKey, depth: int) -> dict[str, float]:
        bucket = own.get(key, OTHER)
        callers = raw[key][4] if key in raw else {}
        total = sum(c[2] for c in callers.values())
        if bucket != OTHER or depth == 0 or total <= 0:
            return {bucket: 1.0}
        shares: dict[str, float] = defaultdict(float)
        for caller, entry in callers.items():
            for b, w in resolved(caller, depth - 1).items():
                shares[b] += w * entry[2] / total
        return shares

    buckets: dict[str, float] = defaultdict(float)
    for key, row in raw.items():
        for bucket, weight in resolved(key, 2).items():
            buckets[bucket] += row[2] * weight
    return buckets


@dataclass
class GcWatch:
    """Garbage-collector passes while the block runs (count, total and longest pause)."""

    passes: int = 0
    seconds: float = 0.0
    longest: float = 0.0
    _started: float = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            pause = time.perf_counter() - self._started
            self.passes += 1
            self.seconds += pause
            self.longest = max(self.longest, pause)

    def __enter__(self) -> "GcWatch":
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


@dataclass
class Profiled:
    scenario: Scenario
    timed_requests: int  # the instrumented pass (no profiler)
    app_ms: float  # thread CPU inside the ASGI app per request
    functions: list[Timed]  # per-function thread CPU, totals over timed_requests
    gc: GcWatch
    requests: int  # the cProfile pass
    wall_ms: float  # per request, under the profiler
    buckets: dict[str, float]  # ms per request (own time)
    db_ms: float  # the request's statements replayed alone, ms (median)
    replayed: int
    statements: list[tuple[str, float, str]]  # (origin, median ms alone, first SQL line)

    def per_request(self, timed: Timed) -> float:
        return timed.seconds / max(self.timed_requests, 1) * 1000

    def stages(self) -> dict[str, float]:
        """CPU ms per request: the whole app and its parts (see STAGES)."""
        by_module: dict[str, list[Timed]] = defaultdict(list)
        for t in self.functions:
            by_module[t.module].append(t)
        services = [t for module in SERVICE_MODULES for t in by_module[module]]
        entry = max((self.per_request(t) for t in services), default=0.0)
        auth = sum(self.per_request(t) for module in AUTH_MODULES for t in by_module[module])
        response = sum(self.per_request(t) for t in by_module["fastapi.routing"])
        repository = sum(
            self.per_request(t)
            for module in REPOSITORY_MODULES
            for t in by_module[module]
            if t.is_async
        )
        reads = sum(self.per_request(t) for t in services if t.label.endswith(f" {READ_FUNCTION}"))
        return {
            STAGES[0]: self.app_ms,
            STAGES[1]: auth,
            STAGES[2]: entry,
            STAGES[3]: repository,
            STAGES[4]: reads,
            STAGES[5]: response,
            STAGES[6]: self.app_ms - auth - entry - response,
        }


STAGES = (
    "whole request in the app",
    AUTH_STAGE,
    "service (the endpoint's service function, callees included)",
    "… of which repository functions (SQL build + execute + ORM rows)",
    READ_STAGE,
    "response (FastAPI serialize_response: validate + JSON)",
    "the rest: routing, request parsing, dependencies, session begin/commit, middleware",
)


async def profile_scenario(inproc: InProcess, scenario: Scenario, count: int) -> Profiled:
    urls = [scenario.urls[i % len(scenario.urls)] for i in range(count)]
    for url in urls[:3]:  # warm this process' caches (compiled SQL, prepared statements)
        await inproc.get(url)

    # 1. Thread CPU per function, no profiler.
    timed_requests = 0
    inproc.app_cpu = 0.0
    deadline = time.monotonic() + PROFILE_TIMEOUT
    with Instrument() as instrument, GcWatch() as gcw:
        for url in urls:
            await inproc.get(url)
            timed_requests += 1
            if time.monotonic() > deadline:
                break
    app_ms = inproc.app_cpu / max(timed_requests, 1) * 1000
    functions = [t for t in instrument.timed.values() if t.calls]

    # 2. Own time per package under cProfile.
    profiler = cProfile.Profile()
    done = 0
    deadline = time.monotonic() + PROFILE_TIMEOUT
    started = time.perf_counter()
    profiler.enable()
    for url in urls:
        await inproc.get(url)
        done += 1
        if time.monotonic() > deadline:
            break
    profiler.disable()
    wall = time.perf_counter() - started
    n = max(done, 1)
    raw: dict[FuncKey, StatsRow] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    buckets = attribute(raw)

    # 3. The DB part alone: each request's statements replayed on the driver.
    per_request: list[float] = []
    per_statement: dict[str, list[float]] = defaultdict(list)
    first_line: dict[str, str] = {}
    deadline = time.monotonic() + PROFILE_TIMEOUT
    for url in urls[:30]:
        total = 0.0
        for stmt in await inproc.capture(url):
            seconds = await inproc.replay(stmt)
            total += seconds
            per_statement[stmt.origin].append(seconds)
            first_line.setdefault(stmt.origin, " ".join(stmt.sql.split())[:90])
        per_request.append(total)
        if time.monotonic() > deadline:
            break
    statements = sorted(
        (
            (origin, statistics.median(v) * 1000, first_line[origin])
            for origin, v in per_statement.items()
        ),
        key=lambda s: -s[1],
    )
    return Profiled(
        scenario,
        timed_requests,
        app_ms,
        functions,
        gcw,
        done,
        wall / n * 1000,
        {k: v / n * 1000 for k, v in buckets.items()},
        statistics.median(per_request) * 1000 if per_request else float("nan"),
        len(per_request),
        statements,
    )


def _detailed(scenario: Scenario) -> bool:
    """The filter and sort variants of a list repeat their sibling's detail."""
    return "status=open" not in scenario.name and "sort=newest" not in scenario.name


def profile_block(profiles: Sequence[Profiled]) -> str:
    lines = [
        "### Where the time goes (in-process, concurrency 1)",
        "",
        "Each scenario's URLs served in this process through `httpx.ASGITransport` (the same app, "
        "settings and engine as the server; the default asyncio loop instead of uvloop), one "
        "request at a time, three passes: (1) the app's service and repository functions wrapped "
        "for thread CPU time per call (no profiler; waits on Postgres cost none), with the "
        "garbage collector's pauses; (2) cProfile, own time per package (the profiler inflates "
        "Python 2–4×: read shares); (3) the requests' SQL replayed alone on a bare asyncpg "
        "connection (*DB alone*: round trip incl. rows, no ORM; median).",
        "",
        "CPU ms per request by stage (pass 1):",
        "",
        "| scenario | requests | " + " | ".join(STAGES) + " | GC passes/req, ms/req (longest) |",
        "|" + "---|" * (3 + len(STAGES)),
    ]
    for p in profiles:
        n = max(p.timed_requests, 1)
        stages = p.stages()
        cells = [p.scenario.name, str(p.timed_requests)]
        cells += [f"{stages[label]:.2f}" for label in STAGES]
        cells.append(
            f"{p.gc.passes / n:.2f}, {p.gc.seconds / n * 1000:.2f} ({p.gc.longest * 1000:.1f})"
        )
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Own time per package, ms per request under cProfile (pass 2; builtins charged to their "
        "callers' package), and the SQL alone (pass 3):",
        "",
        "| scenario | requests | wall ms/req (profiled) | DB alone ms/req | "
        + " | ".join(BUCKETS)
        + " |",
        "|" + "---|" * (4 + len(BUCKETS)),
    ]
    for p in profiles:
        cells = [p.scenario.name, str(p.requests), f"{p.wall_ms:.1f}", f"{p.db_ms:.1f}"]
        cells += [f"{p.buckets.get(b, 0.0):.1f}" for b in BUCKETS]
        lines.append("| " + " | ".join(cells) + " |")
    for p in profiles:
        if not _detailed(p.scenario):
            continue
        lines += ["", f"**{p.scenario.name}**", ""]
        lines += [
            f"- SQL alone {ms:.2f} ms/req `{origin}`: `{sql}…`" for origin, ms, sql in p.statements
        ]
        top = sorted(p.functions, key=lambda t: -t.seconds)[:8]
        n = max(p.timed_requests, 1)
        lines += [
            f"- CPU {p.per_request(t):.2f} ms/req ({t.calls / n:.1f} calls) `{t.label}`"
            for t in top
        ]
    return "\n".join(lines)


def _sql_block(stmt: Captured, plan: str) -> list[str]:
    params = ", ".join(repr(p) for p in stmt.params)
    return ["```sql", stmt.sql.strip(), f"-- parameters: {params}", "```", "```", plan, "```", ""]


def _plan_ms(plan: str, what: str) -> float:
    found = re.search(rf"{what} Time: ([0-9.]+) ms", plan)
    return float(found.group(1)) if found else float("nan")


async def explain_block(inproc: InProcess, scenarios: Sequence[Scenario], hot: int | None) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the list statement the API sends (captured at the driver)
    for the first URL of the list and search scenarios that matter, and of every statement of a
    card (and timeline) on the busiest product."""
    wanted = [
        (s, url)
        for s in scenarios
        if s.name.startswith(("list: first page, default", "list: page", "search", "compare"))
        and _detailed(s)
        for url in (
            # the most frequent query and one of the rarest
            [s.urls[0], s.urls[SEARCHES.index("брак доставка")]]
            if s.kind == "compare"
            else s.urls[:1]
        )
    ]
    lines = ["### EXPLAIN (ANALYZE, BUFFERS), the SQL exactly as the API sends it", ""]
    for scenario, url in wanted:
        captured = await inproc.capture(url)
        main = [c for c in captured if "FROM interactions" in c.sql and "ORDER BY" in c.sql]
        for stmt in main[:1]:
            lines += [f"**{scenario.name}** — `GET {urllib.parse.unquote(url)}`", ""]
            lines += _sql_block(stmt, await inproc.explain(stmt))
    for scenario in scenarios:
        if scenario.kind not in ("card", "timeline") or hot is None:
            continue
        url = f"{API}/interactions/{hot}" + ("/timeline" if scenario.kind == "timeline" else "")
        plans = [(stmt, await inproc.explain(stmt)) for stmt in await inproc.capture(url)]
        lines += [
            f"**{scenario.kind} of interaction {hot}, the newest review on the busiest product** "
            f"— `GET {url}`: every statement (planning + execution ms, from EXPLAIN ANALYZE)",
            "",
        ]
        lines += [
            f"- {_plan_ms(plan, 'Planning'):.2f} + {_plan_ms(plan, 'Execution'):.2f} ms "
            f"`{stmt.origin}`"
            for stmt, plan in plans
        ]
        slowest = max(plans, key=lambda sp: _plan_ms(sp[1], "Execution"), default=None)
        if slowest is not None:
            lines += ["", f"The slowest, `{slowest[0].origin}`:", ""]
            lines += _sql_block(*slowest)
    return "\n".join(lines)


async def gc_run(
    inproc: InProcess, urls: Sequence[str], count: int, concurrency: int
) -> tuple[list[float], float, GcWatch]:
    """`count` requests at `concurrency` in-process: latencies (s), wall (s), the GC passes."""
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            url = urls[next_index % len(urls)]
            next_index += 1
            started = time.perf_counter()
            await inproc.get(url)
            latencies.append(time.perf_counter() - started)

    for url in urls[:20]:
        await inproc.get(url)
    with GcWatch() as watch:
        started = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(*(worker() for _ in range(concurrency))), GC_RUN_TIMEOUT
        )
        wall = time.perf_counter() - started
    return latencies, wall, watch


async def gc_block(inproc: InProcess, scenarios: Sequence[Scenario], concurrency: int) -> str:
    """The collector's pauses with 8 requests in flight, as the server's process runs them, and
    with the long-lived heap frozen after startup (`gc.collect(); gc.freeze()`, applied here in
    the benchmark's process only)."""
    lines = [
        f"### Garbage collection at concurrency {concurrency} (in-process)",
        "",
        f"{GC_RUN_REQUESTS} requests at concurrency {concurrency} served in this process (which "
        "holds the app's imports like the server, plus the benchmark's own modules): as is, "
        "then after `gc.collect(); gc.freeze()` (the long-lived objects moved out of the "
        "collector's reach; done here, not in app/), then unfrozen again.",
        "",
        "| scenario | heap | req/s | p50 ms | p95 ms | p99 ms | max ms | GC passes | GC total ms "
        "| longest GC pause ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    chosen = [
        s
        for s in scenarios
        if s.name.startswith("list: first page, default") or s.kind in ("card", "timeline")
    ]
    for scenario in chosen:
        for frozen in (False, True):
            heap = "as is"
            if frozen:
                gc.collect()
                gc.freeze()
                heap = f"frozen ({gc.get_freeze_count():,} objects)"
            try:
                latencies, wall, watch = await gc_run(
                    inproc, scenario.urls, GC_RUN_REQUESTS, concurrency
                )
            finally:
                gc.unfreeze()
            ms = [v * 1000 for v in latencies]
            cells = [
                scenario.name,
                heap,
                f"{len(ms) / wall:.0f}",
                f"{nearest_rank(ms, 0.5):.1f}",
                f"{nearest_rank(ms, 0.95):.1f}",
                f"{nearest_rank(ms, 0.99):.1f}",
                f"{max(ms):.1f}",
                str(watch.passes),
                f"{watch.seconds * 1000:.0f}",
                f"{watch.longest * 1000:.1f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)

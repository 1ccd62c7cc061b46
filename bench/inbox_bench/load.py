"""The load driver: the scenarios' URLs (cursor walks, sampled ids) and the measured runs at
concurrency 8 and 1, with the API's, Postgres' and the benchmark's CPU."""

import contextlib
import os
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import httpx

from bench.inbox_bench.corpus import SEARCHES
from bench.inbox_bench.data import Tenancy, sample_ids
from bench.inbox_bench.options import (
    API,
    PAGE,
    SCENARIO_TIMEOUT,
    SEQUENTIAL_TIMEOUT,
    WALK_TIMEOUT,
    Options,
)
from bench.inbox_bench.report import Measured, Scenario
from bench.report import LoadClient, drive
from bench.stack import (
    ApiServer,
    BenchError,
    Services,
    process_cpu_seconds,
    say,
    tree_cpu_seconds,
)


def _url(path: str, **params: Any) -> str:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    return f"{API}{path}" + (f"?{query}" if query else "")


async def _drive(
    client: LoadClient,
    urls: Sequence[str],
    count: int,
    concurrency: int,
    deadline: float,
    result: Measured | None,
) -> bool:
    """`count` GETs over `urls` in rotation by `concurrency` workers; False when cut by time."""

    def url(i: int) -> str:
        return urls[i % len(urls)]

    return await drive(lambda i: client.get(url(i)), url, count, concurrency, deadline, result)


async def run_scenario(
    client: LoadClient,
    scenario: Scenario,
    opts: Options,
    server: ApiServer,
    pg_pid: int | None,
) -> Measured:
    result = Measured(scenario=scenario)
    deadline = time.monotonic() + SCENARIO_TIMEOUT
    urls = scenario.urls
    warm = urls[len(urls) - opts.warmup :] if len(urls) > opts.requests else urls
    await _drive(client, warm, opts.warmup, opts.concurrency, deadline, None)
    server.check_alive()
    api0, pg0 = tree_cpu_seconds(server.pid), _pg_cpu(pg_pid)
    bench0 = process_cpu_seconds(os.getpid())
    started = time.perf_counter()
    finished = await _drive(client, urls, opts.requests, opts.concurrency, deadline, result)
    result.wall = time.perf_counter() - started
    result.api_cpu = tree_cpu_seconds(server.pid) - api0
    result.pg_cpu = _pg_cpu(pg_pid) - pg0
    result.bench_cpu = process_cpu_seconds(os.getpid()) - bench0
    result.stopped_early = not finished
    server.check_alive()
    sequential = Measured(scenario=scenario)
    seq_deadline = time.monotonic() + SEQUENTIAL_TIMEOUT
    await _drive(client, urls, opts.sequential, 1, seq_deadline, sequential)
    result.sequential = sequential.latencies
    return result


def _pg_cpu(pid: int | None) -> float:
    return tree_cpu_seconds(pid) if pid is not None else float("nan")


async def walk(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], pages: int, keep: int
) -> list[str]:
    """Follow next_cursor `pages` pages deep; the URLs of the last `keep` pages reached."""
    urls: list[str] = []
    cursor: str | None = None
    deadline = time.monotonic() + WALK_TIMEOUT
    for page in range(pages + keep):
        url = _url(path, **params, cursor=cursor)
        if page >= pages:
            urls.append(url)
        response = await client.get(url)
        if response.status_code != 200:
            raise BenchError(f"walking {url}: {response.status_code} {response.text[:300]}")
        cursor = response.json()["next_cursor"]
        if cursor is None or time.monotonic() > deadline:
            break
    if not urls:
        raise BenchError(f"{path} {params}: fewer than {pages} pages (or walk timed out)")
    return urls


def _mix(sample: Sequence[tuple[int, str]]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for _, channel in sample:
        counts[channel] += 1
    return ", ".join(f"{counts[c]:,} {c}s" for c in ("review", "question", "chat"))


async def has_timeline(client: httpx.AsyncClient) -> bool:
    paths = (await client.get("/openapi.json")).json().get("paths", {})
    return f"{API}/interactions/{{interaction_id}}/timeline" in paths


async def build_scenarios(
    client: httpx.AsyncClient,
    services: Services,
    opts: Options,
    tenancy: Tenancy,
    timeline: bool,
) -> list[Scenario]:
    keep = 10  # deep cursors to rotate among
    path = "/interactions"
    say(f"walking cursors {opts.depth} pages deep (limit {PAGE}; {keep} deep cursors each)")
    deep_default = await walk(client, path, {"limit": PAGE}, opts.depth, keep)
    deep_open = await walk(client, path, {"limit": PAGE, "status": "open"}, opts.depth, keep)
    deep_newest = await walk(client, path, {"limit": PAGE, "sort": "newest"}, opts.depth, keep)
    say(f"walking the search cursor {opts.search_depth} pages deep for each query")
    deep_search: list[str] = []
    for q in SEARCHES:
        with contextlib.suppress(BenchError):  # a query with fewer pages is left out
            deep_search += await walk(client, path, {"limit": PAGE, "q": q}, opts.search_depth, 1)
    if not deep_search:
        raise BenchError("no search query has enough pages for the deep search scenario")
    total = opts.requests + opts.warmup
    cards = await sample_ids(services, tenancy.big, total, 0.11)
    scenarios = [
        # What every request pays before the inbox does anything (no target).
        Scenario("baseline (no target): GET /healthz, no auth, no DB", "baseline", ["/healthz"]),
        Scenario(
            "baseline (no target): GET /auth/me, auth + 1 query", "baseline", [f"{API}/auth/me"]
        ),
        Scenario("list: first page, default sort (priority)", "list", [_url(path, limit=PAGE)]),
        Scenario("list: first page, status=open", "list", [_url(path, limit=PAGE, status="open")]),
        Scenario("list: first page, sort=newest", "list", [_url(path, limit=PAGE, sort="newest")]),
        Scenario(f"list: page {opts.depth + 1}+, default sort", "list", deep_default),
        Scenario(f"list: page {opts.depth + 1}+, status=open", "list", deep_open),
        Scenario(f"list: page {opts.depth + 1}+, sort=newest", "list", deep_newest),
        Scenario(
            f"search: first page, {len(SEARCHES)} queries (relevance)",
            "search",
            [_url(path, limit=PAGE, q=q) for q in SEARCHES],
        ),
        Scenario(
            f"search: page {opts.search_depth + 1}, {len(deep_search)} queries",
            "search",
            deep_search,
        ),
        Scenario(
            "compare (no target): search first page, newest first, same queries",
            "compare",
            [_url(path, limit=PAGE, q=q, sort="newest") for q in SEARCHES],
        ),
        Scenario(
            f"card: {len(cards):,} distinct ids ({_mix(cards)})",
            "card",
            [f"{API}{path}/{i}" for i, _ in cards],
        ),
    ]
    if timeline:
        sample = await sample_ids(services, tenancy.big, total, 0.37)
        scenarios.append(
            Scenario(
                f"timeline: {len(sample):,} distinct ids ({_mix(sample)})",
                "timeline",
                [f"{API}{path}/{i}/timeline" for i, _ in sample],
            )
        )
    return [s for s in scenarios if not opts.only or s.kind in opts.only]

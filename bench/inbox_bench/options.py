"""The benchmark's constants (names, sizes, timeouts) and its command-line options."""

import os
from collections.abc import Sequence
from dataclasses import dataclass

import bench.inbox_bench as package
from bench.report import arg_parser
from bench.stack import DATA

DATABASE = "sellerdesk_bench_inbox"
INBOX_DATA = DATA / "inbox"  # its own embedded servers: never stops a running sync benchmark's
API = "/api/v1"
EMAIL = "bench-operator@example.com"
PASSWORD = "bench-only-password"  # noqa: S105 - a throwaway database's operator
SECRETS_KEY = "sellerdesk-bench-only-secrets-key"
JWT_SECRET = "sellerdesk-bench-only-jwt-secret"  # noqa: S105 - fixed, so the token is reproducible

# Data (at --scale 1).
BIG_ROWS = 1_000_000
SMALL_ROWS = 50_000
PRODUCTS = 2_000
PRODUCT_SKEW = 2.5  # product index = floor(PRODUCTS * u^2.5): the top product has ≈5 % of rows
CUSTOMERS_PER_ROW = 0.06  # customer ids drawn from 60,000 per million rows (≈4 rows each)
LINK_ROWS = 100_000
PAGE = 50
PG_SETTINGS = (
    "shared_buffers", "work_mem", "effective_cache_size", "random_page_cost", "jit",
    "max_parallel_workers_per_gather", "max_connections",
)  # fmt: skip

# Timeouts (s): every wait ends.
REQUEST_TIMEOUT = 30.0
SCENARIO_TIMEOUT = 150.0  # per scenario: warm-up + measured requests at concurrency 8
SEQUENTIAL_TIMEOUT = 30.0  # per scenario: the requests at concurrency 1
GC_RUN_REQUESTS = 800
GC_RUN_TIMEOUT = 60.0
PROFILE_TIMEOUT = 12.0  # per scenario and pass of the in-process analysis
LOAD_STATEMENT_TIMEOUT = 900.0
WALK_TIMEOUT = 240.0


SCENARIO_KINDS = ("baseline", "list", "search", "compare", "card", "timeline")  # scenario kinds


@dataclass(frozen=True)
class Options:
    scale: float
    requests: int
    warmup: int
    concurrency: int
    sequential: int
    depth: int
    search_depth: int
    profile_requests: int
    load_jobs: int
    reuse_data: bool
    api_workers: int = 1
    only: frozenset[str] = frozenset()  # scenario kinds to run; empty: all

    def rows(self, full: int) -> int:
        return max(1, round(full * self.scale))


def parse_args(argv: Sequence[str]) -> Options:
    parser = arg_parser("bench.inbox_bench", package.__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="scale the data (targets: 1)")
    parser.add_argument("--requests", type=int, default=1000, help="measured per scenario")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured, per scenario")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument(
        "--sequential", type=int, default=200, help="requests at concurrency 1, per scenario"
    )
    parser.add_argument("--depth", type=int, default=200, help="pages walked for deep cursors")
    parser.add_argument(
        "--search-depth",
        type=int,
        default=5,
        help="pages walked for the deep search page (relevance ranks 500 matches: 10 pages)",
    )
    parser.add_argument(
        "--profile-requests", type=int, default=60, help="in-process requests profiled/scenario"
    )
    parser.add_argument(
        "--load-jobs",
        type=int,
        default=max(1, min(4, os.cpu_count() or 1)),
        help="parallel loader connections",
    )
    parser.add_argument(
        "--reuse-data",
        action="store_true",
        help="development aid: keep the database when it holds this scale's data (no reload)",
    )
    parser.add_argument(
        "--api-workers",
        type=int,
        default=1,
        help="uvicorn worker processes (1, as `make run`; docker compose runs WEB_CONCURRENCY=2)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="development aid: run only these scenario kinds, comma-separated "
        f"({', '.join(SCENARIO_KINDS)})",
    )
    args = parser.parse_args(argv)
    only = frozenset(filter(None, args.only.split(",")))
    if only - set(SCENARIO_KINDS):
        parser.error(f"--only takes {', '.join(SCENARIO_KINDS)}")
    if args.scale <= 0 or args.requests < 1 or args.concurrency < 1 or args.depth < 1:
        parser.error("--scale must be > 0; --requests, --concurrency and --depth ≥ 1")
    return Options(
        args.scale,
        args.requests,
        max(0, args.warmup),
        args.concurrency,
        max(0, args.sequential),
        args.depth,
        max(1, args.search_depth),
        max(0, args.profile_requests),
        max(1, args.load_jobs),
        args.reuse_data,
        max(1, args.api_workers),
        only,
    )

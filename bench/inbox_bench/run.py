"""The run: services, data, the API server, the scenarios under load, then the in-process
analysis; and `main`."""

import contextlib
import gc
import sys
from collections.abc import Sequence

import httpx

from bench.inbox_bench.data import (
    bench_settings,
    create_tenants,
    describe_data,
    find_tenants,
    has_data,
    hot_id,
    load_data,
)
from bench.inbox_bench.load import build_scenarios, has_timeline, run_scenario
from bench.inbox_bench.options import (
    DATABASE,
    EMAIL,
    INBOX_DATA,
    JWT_SECRET,
    PASSWORD,
    REQUEST_TIMEOUT,
    SECRETS_KEY,
    Options,
    parse_args,
)
from bench.inbox_bench.profiling import (
    InProcess,
    explain_block,
    gc_block,
    profile_block,
    profile_scenario,
)
from bench.inbox_bench.report import Report, per_query_block, summary_of
from bench.report import LoadClient, run_main, scale_note
from bench.stack import (
    ApiServer,
    api_env,
    flush_redis,
    login,
    migrate,
    recreate_database,
    say,
    start_services,
)


async def run_bench(opts: Options, report: Report) -> None:
    INBOX_DATA.mkdir(parents=True, exist_ok=True)
    services = start_services(DATABASE, INBOX_DATA)
    server: ApiServer | None = None
    try:
        say(services.describe())
        settings = bench_settings(services)
        flush_redis(services.redis_url)
        reuse = opts.reuse_data and await has_data(services, opts)
        if reuse:
            say(f"--reuse-data: database {DATABASE} kept; alembic upgrade head")
            migrate(services.database_url)
            tenancy = await find_tenants(settings)
            report.notes.append("**--reuse-data: the data were not reloaded by this run**")
        else:
            await recreate_database(services)
            say(f"database {DATABASE} recreated; alembic upgrade head")
            migrate(services.database_url)
            tenancy = await create_tenants(settings)
            await load_data(services, opts, tenancy, report)
        data_lines = await describe_data(services, tenancy, report)
        for line in data_lines:
            say(line)
        report.notes += data_lines

        env = api_env(services, SECRETS_KEY, JWT_SECRET)
        server = ApiServer(env, INBOX_DATA / "api.log", workers=opts.api_workers)
        server.start()
        command = " ".join(server.argv()[1:]).replace(str(server.port), "<free port>")
        processes = "one process" if opts.api_workers == 1 else f"{opts.api_workers} processes"
        say(f"API up: {command} (pid {server.pid}, {processes}); log {server.log}")
        report.notes.append(
            f"API: `python {command}` — **{processes}** (uvloop + httptools), "
            "ENV=production with fixed JWT_SECRET/SECRETS_KEY, LOG_LEVEL=WARNING, default pool "
            f"(DB_POOL_SIZE {settings.db_pool_size} + overflow {settings.db_max_overflow})"
        )
        report.notes.append(
            f"load: {opts.concurrency} concurrent workers on one aiohttp.ClientSession "
            "(`bench.report.LoadClient`: keep-alive HTTP/1.1, one connection per worker; ≈ 0.1 ms "
            "of client CPU per request against a minimal server, httpx.AsyncClient ≈ 1.2 ms) in "
            f"this process; per scenario {opts.warmup} warm-up requests, then "
            f"{opts.requests:,} measured (latency = client-side, request sent → body read), "
            f"then {opts.sequential} at concurrency 1. CPU ms/req = CPU seconds of the process "
            "(tree) during the measured phase ÷ requests"
        )
        pg_pid = (
            services.postgres.proc.pid if services.postgres and services.postgres.proc else None
        )

        limits = httpx.Limits(
            max_connections=opts.concurrency, max_keepalive_connections=opts.concurrency
        )
        async with contextlib.AsyncExitStack() as clients:
            client = await clients.enter_async_context(
                httpx.AsyncClient(base_url=server.url, timeout=REQUEST_TIMEOUT, limits=limits)
            )
            token = await login(client, EMAIL, PASSWORD)
            client.headers["Authorization"] = f"Bearer {token}"
            # The measured load's own client (httpx: the login, the cursor walks, setup).
            load = await clients.enter_async_context(
                LoadClient(
                    server.url,
                    connections=opts.concurrency,
                    timeout=REQUEST_TIMEOUT,
                    headers={"Authorization": f"Bearer {token}"},
                )
            )
            # The load generator's own long-lived heap (the app it imports, the corpus) out of
            # the collector's reach: its gen-2 passes must not stall the clients' clocks.
            gc.collect()
            gc.freeze()
            say("logged in as the operator (POST /api/v1/auth/login)")
            timeline = await has_timeline(client)
            if not timeline:
                report.skipped.append(
                    "timeline: `GET /api/v1/interactions/{id}/timeline` is not in the running "
                    "API's OpenAPI (app.links.router is not mounted in app/api.py yet)"
                )
                say("timeline route not mounted: that scenario is skipped")
            scenarios = await build_scenarios(client, services, opts, tenancy, timeline)
            hot = await hot_id(services, tenancy.big)
            for scenario in scenarios:
                say(f"{scenario.name}")
                measured = await run_scenario(load, scenario, opts, server, pg_pid)
                report.measured.append(measured)
                say(summary_of(measured))
                for error in measured.errors[:3]:
                    say(f"    {error}")
            if block := per_query_block(report.measured):
                report.blocks.append(block)

        server.stop()
        say("API stopped; in-process EXPLAIN and profile")
        gc.unfreeze()  # the in-process app is measured as the server runs it
        async with InProcess(settings, token) as inproc:
            report.blocks.append(await explain_block(inproc, scenarios, hot))
            say("garbage collection at concurrency 8, in-process")
            report.blocks.append(await gc_block(inproc, scenarios, opts.concurrency))
            if opts.profile_requests:
                profiles = []
                for scenario in scenarios:
                    say(f"  profiling {scenario.name}")
                    profiles.append(await profile_scenario(inproc, scenario, opts.profile_requests))
                report.blocks.append(profile_block(profiles))
    finally:
        if server is not None:
            server.stop()
        services.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    opts = parse_args(args)
    report = Report(opts.concurrency)
    work, notes = run_bench(opts, report), scale_note(opts.scale)
    return run_main("bench.inbox_bench", "Inbox API benchmark", args, work, report, notes)

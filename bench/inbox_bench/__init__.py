"""Inbox API benchmark (the inbox issue): one seller with 1,000,000 interactions in Postgres, the
API as a real server (one uvicorn process), 8 concurrent clients.

    .venv/bin/python -m bench.inbox_bench [--scale 1.0] [--requests 1000] [--concurrency 8]

1. Load: 1,000,000 interactions for the big seller (≈70 % reviews, 25 % questions, 5 % chats;
   2,000 products with a skewed share; ≈15 % open with SLA due around now; two years of history;
   Russian texts composed from a few hundred phrases), 50,000 for a second seller (interleaved,
   so tenancy filters matter), chat messages for every chat, ≈100,000 link candidates; set-based
   SQL (`INSERT … SELECT … FROM generate_series`), then `VACUUM ANALYZE`.
2. `python -m uvicorn --factory app.main:asgi` on a free port (one process, ENV=production with
   fixed secrets, LOG_LEVEL=WARNING); the operator logs in through `POST /api/v1/auth/login`.
3. Per scenario, ≥ 1,000 requests (after a warm-up) from 8 concurrent aiohttp clients: client-side
   p50/p95/p99, throughput, non-200s; list first page (default sort, status=open, newest), list
   at a deep cursor (200 pages), search first page and deep page, card, timeline. Then 200
   sequential requests (concurrency 1) and the API's and Postgres' CPU per request. Rows without
   a target for reading the others: /healthz and /auth/me (what any request costs), and search
   sorted newest-first (an alternative to ranking).
4. `EXPLAIN (ANALYZE, BUFFERS)` of the list statements exactly as the API sends them (captured
   from the driver while the app serves the request in-process).
5. Where the time goes: each scenario served in-process under cProfile (time per package, the
   app's functions with file:line) and its SQL replayed alone on the driver.

Targets (p95, concurrency 8): list ≤ 15 ms, card ≤ 15 ms, timeline ≤ 20 ms, search ≤ 60 ms.
A missed target prints MISSED, never adjusted. Postgres/Redis are BENCH_DATABASE_URL /
BENCH_REDIS_URL when set, else embedded ones under `.data/bench/inbox/`; the database
`sellerdesk_bench_inbox` is dropped and created, the Redis database flushed.
"""

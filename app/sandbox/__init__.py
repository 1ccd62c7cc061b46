"""Wildberries sandbox: a stand-in for the marketplace (docs/wb-api.md), its own ASGI app.

Never imports other `app.*` packages; only the dev supervisor, tests and benchmarks import it.
"""

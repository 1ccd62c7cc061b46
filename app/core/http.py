"""Shared pieces for our outbound HTTP clients."""

import functools
import ssl

import certifi


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process. Every httpx client otherwise builds its own and loads the CA
    bundle: ~28 ms of CPU, which dominated a reply's cost when each send made a client."""
    return ssl.create_default_context(cafile=certifi.where())

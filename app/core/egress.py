"""Where our outbound HTTP requests may go: the defence against server-side request forgery.

Every outbound call has a purpose (`Purpose`): the seller's draft provider, the marketplace (and,
later, webhooks). A request of a purpose is sent only when

1. its exact origin (`scheme://host:port`, default port made explicit) is on the purpose's
   allow-list (`EGRESS_ALLOW_<PURPOSE>`, empty by default: a local LLM server, the sandbox);
   it is then sent as it is; or
2. it uses https (http too outside production) and EVERY address its host resolves to is
   globally routable (`is_public`): no loopback, private, link-local, multicast, reserved,
   unspecified or shared (100.64/10) address, no IPv4-mapped, 6to4 or NAT64 form of one, no
   cloud metadata address. IP literals in any spelling (2130706433, 0177.0.0.1, 0x7f.1, 127.1,
   [::ffff:127.0.0.1]) are read by the C library's numeric parser, as a connect would read them.
   The request then goes to the address that was checked, with the Host header, TLS SNI and
   certificate check still on the name: a DNS answer that changes between the check and the
   connect (rebinding) cannot reach an internal address.

`EgressTransport` applies the policy to every request of a client, each redirect hop included;
a refused request is never sent, so a caller cannot learn whether an internal port is open.
Errors shown to a caller name the failure class only (`failure`, `http_status`, `MALFORMED`),
never the exception text or an address.
"""

import asyncio
import enum
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import TYPE_CHECKING

import httpx

from app.core.http import tls_context

if TYPE_CHECKING:
    from app.core.config import Settings

IPAddress = IPv4Address | IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

DEFAULT_PORTS = {"http": 80, "https": 443}
RESOLVE_TIMEOUT_SECONDS = 5.0
METADATA_ADDRESSES = frozenset({ip_address("169.254.169.254"), ip_address("fd00:ec2::254")})
NAT64 = IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are the IPv4 address
# Not globally reachable (IANA special-purpose registries) but `is_global` on older Pythons:
# shared address space (carrier-grade NAT), IETF protocol assignments, IPv6 documentation, SRv6.
NOT_GLOBAL = (
    IPv4Network("100.64.0.0/10"),
    IPv4Network("192.0.0.0/24"),
    IPv6Network("3fff::/20"),
    IPv6Network("5f00::/16"),
)

# What a caller is told; the only texts a failed outbound request may produce.
TIMEOUT = "timeout"
REFUSED = "refused by policy"
CONNECTION_FAILED = "connection failed"
MALFORMED = "malformed response"
NOT_PUBLIC = "the host must resolve to public addresses only"


def http_status(code: int) -> str:
    return f"HTTP status {code}"


def failure(exc: BaseException) -> str:
    """The class of a failed request, safe to show: never the exception's text."""
    if isinstance(exc, Refused | httpx.InvalidURL | httpx.UnsupportedProtocol):
        return REFUSED  # a URL the policy cannot vet is refused too
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return TIMEOUT
    return CONNECTION_FAILED


class Purpose(enum.StrEnum):
    DRAFT_PROVIDER = "draft_provider"
    MARKETPLACE = "marketplace"


class Refused(Exception):
    """The policy refused the request; nothing was sent. The message never names an address."""


class Unresolved(Exception):
    """The host name did not resolve (or not in time); nothing was sent."""


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def numeric_address(host: str) -> IPAddress | None:
    """The address an IP literal names, in any spelling the C library accepts; None for a name."""
    try:
        infos = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    return ip_address(infos[0][4][0])


def is_public(address: IPAddress) -> bool:
    """Whether `address` is globally routable and not one of ours or the cloud's."""
    if address in METADATA_ADDRESSES:
        return False
    if isinstance(address, IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:  # reaches the IPv4 address: judge that one
            return is_public(embedded)
        if address.teredo is not None or address.is_site_local:
            return False
    if any(address in network for network in NOT_GLOBAL):
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def origin(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def url_origin(url: httpx.URL) -> str:
    port = url.port or DEFAULT_PORTS.get(url.scheme, 0)
    return origin(url.scheme, url.raw_host.decode("ascii"), port)


def parse_origin(value: str) -> str:
    """A configured allow-list entry as its canonical origin; ValueError unless it is exactly
    `scheme://host[:port]` (no path, query, user, wildcard or address range)."""
    try:
        url = httpx.URL(value.strip())
    except httpx.InvalidURL as exc:
        raise ValueError(f"{value!r} is not a URL") from exc
    host = url.raw_host.decode("ascii")
    if url.scheme not in DEFAULT_PORTS:
        raise ValueError(f"{value!r}: the scheme must be http or https")
    if not host or not all(c.isalnum() or c in ".-_:" for c in host):
        raise ValueError(f"{value!r}: needs one host name or address (no wildcards)")
    if url.path not in ("", "/") or url.query or url.fragment or url.userinfo:
        raise ValueError(f"{value!r}: an origin has no path, query or user (CIDR ranges neither)")
    if url.port is not None and not 0 < url.port < 65536:
        raise ValueError(f"{value!r}: the port must be 1..65535")
    return url_origin(url)


@dataclass(frozen=True)
class EgressPolicy:
    """The rules above for one process: https only (production or not), allow-lists per purpose
    (canonical origins) and the resolver (injected by tests; DNS is outside)."""

    https_only: bool
    allow: Mapping[Purpose, frozenset[str]] = field(default_factory=dict)
    resolver: Resolver = system_resolver

    @classmethod
    def from_settings(
        cls, settings: "Settings", resolver: Resolver = system_resolver
    ) -> "EgressPolicy":
        return cls(
            https_only=settings.env == "production",
            allow={
                Purpose.DRAFT_PROVIDER: frozenset(settings.egress_allow_draft_provider),
                Purpose.MARKETPLACE: frozenset(settings.egress_allow_marketplace),
            },
            resolver=resolver,
        )

    async def check(self, purpose: Purpose, url: httpx.URL | str) -> IPAddress | None:
        """The address to connect to, or None for an allow-listed origin (sent as it is).

        Raises Refused, or Unresolved when the name has no address (now)."""
        try:
            url = httpx.URL(url)
        except httpx.InvalidURL:
            raise Refused("not a valid URL") from None
        host = url.raw_host.decode("ascii")
        if url.scheme not in DEFAULT_PORTS or not host:
            raise Refused("only http(s) URLs with a host may be called")
        if url_origin(url) in self.allow.get(purpose, ()):
            return None
        if self.https_only and url.scheme != "https":
            raise Refused("the URL must use https")
        addresses = await self._addresses(host, url.port or DEFAULT_PORTS[url.scheme])
        if not all(is_public(address) for address in addresses):
            raise Refused(NOT_PUBLIC)
        return addresses[0]

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        numeric = numeric_address(host)
        if numeric is not None:
            return [numeric]
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
                answers = await self.resolver(host, port)
        except (OSError, TimeoutError, UnicodeError):
            raise Unresolved("the host name did not resolve") from None
        try:
            addresses = [ip_address(answer) for answer in answers]
        except ValueError:
            raise Refused(NOT_PUBLIC) from None
        if not addresses:
            raise Unresolved("the host name did not resolve")
        return addresses

    def transport(
        self, purpose: Purpose, inner: httpx.AsyncBaseTransport | None = None
    ) -> "EgressTransport":
        return EgressTransport(self, purpose, inner)


class EgressTransport(httpx.AsyncBaseTransport):
    """Checks every request against the policy and sends it to the checked address.

    `inner` (tests: the sandbox's ASGI app, a mock) belongs to the caller and is left open;
    without one, a default transport per host name is made (and closed with this one), so a TLS
    connection verified for one name never carries a request for another."""

    def __init__(
        self, policy: EgressPolicy, purpose: Purpose, inner: httpx.AsyncBaseTransport | None
    ) -> None:
        self._policy = policy
        self._purpose = purpose
        self._inner = inner
        self._own: dict[str, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            address = await self._policy.check(self._purpose, request.url)
        except Unresolved:
            raise httpx.ConnectError("name resolution failed", request=request) from None
        host = request.url.raw_host.decode("ascii")
        if address is None:
            return await self._transport_for(host).handle_async_request(request)
        extensions = dict(request.extensions)
        if numeric_address(host) is None:
            extensions["sni_hostname"] = host  # TLS: the name's certificate, at the address
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=str(address)),
            headers=request.headers,  # Host: the name, as the client set it
            stream=request.stream,
            extensions=extensions,
        )
        return await self._transport_for(host).handle_async_request(pinned)

    def _transport_for(self, host: str) -> httpx.AsyncBaseTransport:
        if self._inner is not None:
            return self._inner
        if host not in self._own:
            self._own[host] = httpx.AsyncHTTPTransport(verify=tls_context())
        return self._own[host]

    async def aclose(self) -> None:
        for transport in self._own.values():
            await transport.aclose()
        self._own.clear()

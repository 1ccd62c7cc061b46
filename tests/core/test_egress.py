"""The outbound request policy (app/core/egress.py): internal addresses in every spelling, public
ones, allow-list semantics, https in production, DNS answers that mix or change (rebinding),
redirects, and TLS kept on the name while the connection goes to the checked address.

DNS is the one thing mocked (`tests.egress.FakeDns`); the spellings of IP literals are read by
the C library, as a connect would read them."""

import asyncio
import datetime
import ipaddress
import re
import ssl
from collections.abc import AsyncIterator, Callable
from ipaddress import IPv4Address, ip_address

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.core import egress
from app.core.config import Settings
from app.core.egress import EgressPolicy, Purpose, Refused
from tests.egress import PUBLIC_V4, PUBLIC_V6, FakeDns, listening

# Not public: loopback, private, link-local (with the metadata address), shared (CGNAT), "this
# network", multicast, reserved, broadcast, IETF protocol and documentation/benchmark ranges.
INTERNAL_V4 = [
    "127.0.0.1", "127.0.0.53", "127.255.255.254", "10.0.0.1", "10.20.30.40", "10.255.255.254",
    "172.16.0.1", "172.20.1.2", "172.31.255.254", "192.168.0.1", "192.168.100.200",
    "169.254.0.1", "169.254.169.254", "169.254.170.2", "100.64.0.1", "100.100.100.200",
    "100.127.255.254", "0.0.0.0", "0.1.2.3",  # noqa: S104 - an address refused, not bound "224.0.0.1", "239.255.255.250", "240.0.0.1",
    "255.255.255.255", "192.0.0.8", "192.0.2.10", "198.18.0.1", "198.51.100.7", "203.0.113.9",
]  # fmt: skip
# IPv6: loopback, unspecified, link-local, unique-local (with the EC2 metadata address),
# multicast, site-local, documentation, Teredo, discard, local-use NAT64, IPv4-compatible, SRv6.
INTERNAL_V6 = [
    "::1", "::", "fe80::1", "fe80::1ff:fe23:4567:890a", "fc00::1", "fd12:3456:789a::1",
    "fd00:ec2::254", "ff02::1", "ff05::1:3", "fec0::1", "2001:db8::1", "3fff::1", "5f00::1",
    "2001::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2", "100::1", "64:ff9b:1::a00:1", "::8.8.8.8",
]  # fmt: skip
PUBLIC = [
    "8.8.8.8", "1.1.1.1", "77.88.55.242", "93.184.215.14", "185.62.202.2", "2606:4700:4700::1111",
    "2a02:6b8::2:242", "2001:4860:4860::8888", "::ffff:8.8.8.8", "2002:808:808::1",
    "64:ff9b::808:808",
]  # fmt: skip


def v4_spellings(address: str) -> list[str]:
    """Every way the C library reads as this IPv4 address."""
    a, b, c, d = IPv4Address(address).packed
    n = int(IPv4Address(address))
    return sorted({
        address,
        str(n),  # one decimal number: 2130706433
        hex(n),  # one hex number: 0x7f000001
        ".".join(f"0{x:o}" for x in (a, b, c, d)),  # octal: 0177.00.00.01
        ".".join(hex(x) for x in (a, b, c, d)),  # hex: 0x7f.0x0.0x0.0x1
        f"{a}.{b}.{(c << 8) | d}",  # short: 127.0.1
        f"{a}.{(b << 16) | (c << 8) | d}",  # short: 127.1
        f"{hex(a)}.{(b << 16) | (c << 8) | d}",  # mixed: 0x7f.1
    })  # fmt: skip


def v6_forms_of_v4(address: str) -> list[str]:
    """IPv6 addresses that reach this IPv4 address: mapped, 6to4, NAT64."""
    hi, lo = divmod(int(IPv4Address(address)), 1 << 16)
    return [
        f"::ffff:{address}", f"::ffff:{hi:x}:{lo:x}", f"0:0:0:0:0:ffff:{address}",
        f"2002:{hi:x}:{lo:x}::1", f"64:ff9b::{address}",
    ]  # fmt: skip


def v6_spellings(address: str) -> list[str]:
    parsed = ipaddress.IPv6Address(address)
    return sorted({address, parsed.compressed, parsed.exploded, parsed.exploded.upper()})


def host(spelling: str) -> str:
    return f"[{spelling}]" if ":" in spelling else spelling


SPELLED_V4 = [(s, a) for a in INTERNAL_V4 for s in v4_spellings(a)]
V6_FORMS = [f for a in INTERNAL_V4 for f in v6_forms_of_v4(a)]
SPELLED_V6 = [s for a in INTERNAL_V6 for s in v6_spellings(a)]
REFUSED_HOSTS = [s for s, _ in SPELLED_V4] + V6_FORMS + SPELLED_V6
PORTS = (80, 443, 5432, 6379, 8000, 8100, 11434)


def refused_urls() -> list[str]:
    """Each refused host on both schemes and several of our services' ports."""
    return [
        f"{scheme}://{host(h)}:{PORTS[i % len(PORTS)]}/v1"
        for i, h in enumerate(REFUSED_HOSTS)
        for scheme in ("http", "https")
    ]


def policy(
    dns: dict[str, list[str]] | None = None, *, production: bool = False, **allow: list[str]
) -> EgressPolicy:
    origins = {Purpose(p): frozenset(egress.parse_origin(o) for o in v) for p, v in allow.items()}
    return EgressPolicy(https_only=production, allow=origins, resolver=FakeDns(dns))


class Counting(httpx.AsyncBaseTransport):
    """The network behind the policy: records every request it is given and answers `reply`."""

    def __init__(self, reply: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self._reply = reply or (lambda _: httpx.Response(200, json={"ok": True}))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        return self._reply(request)


# --- addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize(("spelling", "address"), SPELLED_V4)
def test_every_ipv4_spelling_reads_as_its_address(spelling: str, address: str) -> None:
    assert egress.numeric_address(spelling) == ip_address(address)


@pytest.mark.parametrize("address", INTERNAL_V4 + INTERNAL_V6 + V6_FORMS)
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not egress.is_public(ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_public(address: str) -> None:
    assert egress.is_public(ip_address(address))


@pytest.mark.parametrize("url", refused_urls())
async def test_internal_hosts_are_refused_in_every_spelling(url: str) -> None:
    rules = policy()
    for purpose in Purpose:
        with pytest.raises(Refused) as refused:
            await rules.check(purpose, url)
        spelled = url.split("//")[1].rsplit(":", 1)[0].strip("[]")
        assert spelled not in str(refused.value)  # never the address
    assert rules.resolver.asked == []  # type: ignore[attr-defined] - literals are not looked up


async def test_a_refused_request_is_never_sent() -> None:
    network = Counting()
    rules = policy()
    async with httpx.AsyncClient(transport=rules.transport(Purpose.DRAFT_PROVIDER, network)) as c:
        for url in refused_urls():
            # httpx itself cannot parse a few spellings (0177.0.0.1): not sent either.
            with pytest.raises((Refused, httpx.InvalidURL)):
                await c.post(url, json={"model": "m"})
    assert network.requests == []


@pytest.mark.parametrize("address", INTERNAL_V4 + INTERNAL_V6 + V6_FORMS)
async def test_names_that_resolve_to_an_internal_address_are_refused(address: str) -> None:
    rules = policy({"llm.example.com": [address]})
    with pytest.raises(Refused, match="public addresses only") as refused:
        await rules.check(Purpose.DRAFT_PROVIDER, "https://llm.example.com/v1")
    assert address not in str(refused.value)


@pytest.mark.parametrize(
    "answers",
    [
        [PUBLIC_V4, "127.0.0.1"],
        ["10.0.0.7", PUBLIC_V4],
        [PUBLIC_V4, PUBLIC_V6, "fd00:ec2::254"],
        [PUBLIC_V6, "::ffff:169.254.169.254"],
        [PUBLIC_V4, "not an address"],
    ],
)
async def test_one_internal_answer_among_public_ones_refuses_the_name(answers: list[str]) -> None:
    rules = policy({"mixed.example.com": answers})
    with pytest.raises(Refused):
        await rules.check(Purpose.MARKETPLACE, "https://mixed.example.com/api")


@pytest.mark.parametrize("address", PUBLIC)
async def test_public_addresses_pass_and_are_pinned(address: str) -> None:
    by_name = policy({"api.example.com": [address, PUBLIC_V4]})
    assert await by_name.check(Purpose.DRAFT_PROVIDER, "https://api.example.com/v1") == ip_address(
        address
    )
    literal = await policy().check(Purpose.MARKETPLACE, f"https://{host(address)}:8443/")
    assert literal == ip_address(address)


async def test_a_public_address_in_an_odd_spelling_is_pinned_to_the_address() -> None:
    network = Counting()
    transport = policy().transport(Purpose.DRAFT_PROVIDER, network)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("http://134744072:8080/v1/models")  # 8.8.8.8 as one number
    (sent,) = network.requests
    assert (sent.url.host, sent.url.port) == ("8.8.8.8", 8080)
    assert sent.headers["host"] == "134744072:8080"


async def test_a_name_that_does_not_resolve_is_a_connection_failure() -> None:
    network = Counting()
    transport = policy().transport(Purpose.MARKETPLACE, network)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError) as failed:
            await client.get("https://nowhere.example.com/ping")
    assert egress.failure(failed.value) == egress.CONNECTION_FAILED
    assert network.requests == []


# --- allow-lists ----------------------------------------------------------------------------

ALLOWED = "http://127.0.0.1:8100"


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        (f"{ALLOWED}/api/v1/feedbacks", True),
        (f"{ALLOWED}", True),
        ("HTTP://127.0.0.1:8100/x", True),
        ("http://127.0.0.1:8101/api", False),  # same host, another port
        ("http://127.0.0.1/api", False),
        ("https://127.0.0.1:8100/api", False),  # same host and port, another scheme
        ("http://localhost:8100/api", False),  # another name for the same host
        ("http://2130706433:8100/api", False),  # another spelling of the address
        ("http://127.0.0.2:8100/api", False),
        ("http://[::1]:8100/api", False),
        ("http://sandbox/api", True),  # the default port made explicit
        ("http://sandbox:80/api", True),
        ("http://sandbox:8080/api", False),
        ("https://sandbox/api", False),
        ("http://sandbox.local/api", False),
    ],
)
async def test_allow_lists_match_exact_origins(url: str, allowed: bool) -> None:
    dns = {"localhost": ["127.0.0.1"], "sandbox": ["172.18.0.5"], "sandbox.local": ["10.0.0.8"]}
    rules = policy(dns, marketplace=[ALLOWED, "http://sandbox"])
    if allowed:
        assert await rules.check(Purpose.MARKETPLACE, url) is None  # sent as it is
    else:
        with pytest.raises(Refused):
            await rules.check(Purpose.MARKETPLACE, url)


async def test_an_allow_list_belongs_to_its_purpose() -> None:
    rules = policy(marketplace=[ALLOWED], draft_provider=["http://127.0.0.1:11434"])
    assert await rules.check(Purpose.MARKETPLACE, f"{ALLOWED}/ping") is None
    assert await rules.check(Purpose.DRAFT_PROVIDER, "http://127.0.0.1:11434/v1") is None
    with pytest.raises(Refused):
        await rules.check(Purpose.DRAFT_PROVIDER, f"{ALLOWED}/v1/chat/completions")
    with pytest.raises(Refused):
        await rules.check(Purpose.MARKETPLACE, "http://127.0.0.1:11434/ping")


async def test_an_allow_listed_origin_is_sent_as_it_is() -> None:
    network = Counting()
    transport = policy(marketplace=["http://sandbox"]).transport(Purpose.MARKETPLACE, network)
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get("http://sandbox/api/v1/feedbacks")).status_code == 200
    assert [str(r.url) for r in network.requests] == ["http://sandbox/api/v1/feedbacks"]


# --- production: https only -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "outcome"),
    [
        ("http://api.example.com/v1", "refused"),
        ("http://8.8.8.8/v1", "refused"),
        ("https://api.example.com/v1", "allowed"),
        ("https://8.8.8.8:8443/v1", "allowed"),
        ("http://llm.internal:11434/v1", "allow-listed"),  # the deployment's local LLM
        ("https://llm.internal:11434/v1", "refused"),  # not that origin, and private
        ("ftp://api.example.com/v1", "refused"),
        ("file:///etc/passwd", "refused"),
    ],
)
async def test_production_needs_https_unless_allow_listed(url: str, outcome: str) -> None:
    dns = {"api.example.com": [PUBLIC_V4], "llm.internal": ["10.1.2.3"]}
    rules = policy(dns, production=True, draft_provider=["http://llm.internal:11434"])
    if outcome == "refused":
        with pytest.raises(Refused):
            await rules.check(Purpose.DRAFT_PROVIDER, url)
    else:
        expected = None if outcome == "allow-listed" else ip_address(PUBLIC_V4 if "api" in url
                                                                       else "8.8.8.8")  # fmt: skip
        assert await rules.check(Purpose.DRAFT_PROVIDER, url) == expected


async def test_development_allows_http_to_public_addresses() -> None:
    rules = policy({"api.example.com": [PUBLIC_V4]})
    assert await rules.check(Purpose.DRAFT_PROVIDER, "http://api.example.com/v1") == ip_address(
        PUBLIC_V4
    )


# --- rebinding and pinning ------------------------------------------------------------------


async def test_rebinding_after_the_check_is_refused_and_nothing_is_sent() -> None:
    dns = FakeDns({"llm.example.com": [PUBLIC_V4]})
    rules = EgressPolicy(https_only=False, resolver=dns)
    assert await rules.check(Purpose.DRAFT_PROVIDER, "http://llm.example.com/v1") is not None
    dns.answers["llm.example.com"] = ["127.0.0.1"]  # the name now points inside
    network = Counting()
    async with httpx.AsyncClient(transport=rules.transport(Purpose.DRAFT_PROVIDER, network)) as c:
        with pytest.raises(Refused):
            await c.post("http://llm.example.com/v1/chat/completions", json={})
    assert network.requests == []


async def test_the_request_goes_to_the_checked_address_with_the_name_kept() -> None:
    dns = FakeDns({"llm.example.com": [PUBLIC_V6, PUBLIC_V4]})
    network = Counting()
    transport = EgressPolicy(https_only=True, resolver=dns).transport(
        Purpose.DRAFT_PROVIDER, network
    )
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.post("https://llm.example.com:8443/v1/chat", json={"a": 1})
        dns.answers["llm.example.com"] = ["10.0.0.1"]  # what a rebinding DNS answers next
    (sent,) = network.requests
    assert sent.url == httpx.URL(f"https://[{PUBLIC_V6}]:8443/v1/chat")
    assert sent.headers["host"] == "llm.example.com:8443"
    assert sent.extensions["sni_hostname"] == "llm.example.com"
    assert sent.content == b'{"a":1}'
    assert response.request.url == httpx.URL("https://llm.example.com:8443/v1/chat")
    assert dns.asked == ["llm.example.com"]  # checked once, connected to what was checked


class Internet(httpcore.AsyncNetworkBackend):
    """Every connection goes to one local TLS server; records the address each was asked for."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.asked: list[tuple[str, int]] = []
        self._real = httpcore.AnyIOBackend()

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 - httpcore's
        local_address: str | None = None,
        socket_options: object = None,
    ) -> httpcore.AsyncNetworkStream:  # fmt: skip
        self.asked.append((host, port))
        return await self._real.connect_tcp("127.0.0.1", self.port, timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _certificate(name: str) -> tuple[bytes, bytes]:
    """A self-signed certificate for `name` (PEM) and its key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@pytest.fixture
async def tls_server(tmp_path: object) -> AsyncIterator[tuple[int, bytes, list[str | None]]]:
    """A TLS server holding a certificate for llm.example.com only: (port, its certificate, the
    SNI names clients sent)."""
    import pathlib

    cert, key = _certificate("llm.example.com")
    folder = pathlib.Path(str(tmp_path))
    (folder / "cert.pem").write_bytes(cert)
    (folder / "key.pem").write_bytes(key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    names: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,misc,return-value]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        host = next(line for line in head.split(b"\r\n") if line.lower().startswith(b"host:"))
        body = host.split(b":", 1)[1].strip()
        writer.write(
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    async with server:
        yield server.sockets[0].getsockname()[1], cert, names


async def test_tls_is_checked_on_the_name_at_the_checked_address(
    tls_server: tuple[int, bytes, list[str | None]],
) -> None:
    port, cert, sni = tls_server
    internet = Internet(port)
    inner = httpx.AsyncHTTPTransport()
    trusting = ssl.create_default_context(cadata=cert.decode())
    # httpx's default transport on a network we control: same connection pool, our sockets.
    inner._pool = httpcore.AsyncConnectionPool(ssl_context=trusting, network_backend=internet)
    dns = FakeDns({"llm.example.com": [PUBLIC_V4], "other.example.com": [PUBLIC_V4]})
    transport = EgressPolicy(https_only=True, resolver=dns).transport(Purpose.DRAFT_PROVIDER, inner)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get("https://llm.example.com/v1/models")
        assert (response.status_code, response.text) == (200, "llm.example.com")
        assert internet.asked == [(PUBLIC_V4, 443)]  # the checked address, never the name
        assert sni == ["llm.example.com"]
        # The same address under a name the certificate does not cover: the check still fails.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get("https://other.example.com/v1/models")
        assert sni == ["llm.example.com", "other.example.com"]
    await inner.aclose()


# --- redirects ------------------------------------------------------------------------------


async def test_a_redirect_to_an_internal_address_is_never_requested() -> None:
    async with listening() as internal:
        to_internal = f"{internal.origin}/_sandbox/reset"

        def outside(request: httpx.Request) -> httpx.Response:
            return httpx.Response(302, headers={"location": to_internal})

        class World(httpx.AsyncBaseTransport):
            """The public host answers a redirect; anything else is the real network."""

            def __init__(self) -> None:
                self.real = httpx.AsyncHTTPTransport()

            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                if request.url.host == PUBLIC_V4:
                    return outside(request)
                return await self.real.handle_async_request(request)

        world = World()
        rules = policy({"evil.example.com": [PUBLIC_V4]})
        guarded = rules.transport(Purpose.DRAFT_PROVIDER, world)
        async with httpx.AsyncClient(transport=guarded, follow_redirects=True) as client:
            with pytest.raises(Refused):
                await client.post("http://evil.example.com/v1/chat/completions", json={})
        async with httpx.AsyncClient(transport=guarded) as client:  # httpx's default: no follow
            response = await client.post("http://evil.example.com/v1/chat/completions")
            assert response.status_code == 302
        assert internal.connections == 0
        # Without the policy the same redirect reaches the internal server: the test can fail.
        async with httpx.AsyncClient(transport=world, follow_redirects=True) as client:
            await client.post(f"http://{PUBLIC_V4}/v1/chat/completions", json={})
        assert internal.connections == 1
        await world.real.aclose()


# --- what callers are told ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "told"),
    [
        (Refused("the URL must use https"), "refused by policy"),
        (httpx.InvalidURL("Invalid IPv4 address: '0177.0.0.1'"), "refused by policy"),
        (httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'"),
         "refused by policy"),
        (httpx.ConnectTimeout("timed out connecting to 10.0.0.1"), "timeout"),
        (httpx.ReadTimeout("read timed out"), "timeout"),
        (TimeoutError(), "timeout"),
        (httpx.ConnectError("[Errno 111] Connection refused"), "connection failed"),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."),
         "connection failed"),
        (httpx.ReadError("[Errno 104] Connection reset by peer"), "connection failed"),
    ],
)  # fmt: skip
def test_failures_are_told_by_class_only(exc: BaseException, told: str) -> None:
    assert egress.failure(exc) == told


def test_http_status_is_told_by_number() -> None:
    assert [egress.http_status(c) for c in (302, 404, 500)] == [
        "HTTP status 302",
        "HTTP status 404",
        "HTTP status 500",
    ]


# --- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "origin"),
    [
        ("http://127.0.0.1:8100", "http://127.0.0.1:8100"),
        ("http://sandbox", "http://sandbox:80"),
        ("https://llm.example.com", "https://llm.example.com:443"),
        ("HTTP://LLM.Example.com:11434/", "http://llm.example.com:11434"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("  http://ollama:11434 ", "http://ollama:11434"),
        ("http://my_llm:8000", "http://my_llm:8000"),
    ],
)
def test_an_allow_list_entry_is_an_origin(entry: str, origin: str) -> None:
    assert egress.parse_origin(entry) == origin


@pytest.mark.parametrize(
    "entry",
    [
        "http://10.0.0.0/8",  # a CIDR range
        "10.0.0.0/8",
        "http://*.example.com",  # a wildcard
        "http://*:8080",
        "*",
        "http://llm.example.com/v1",  # a path
        "http://llm.example.com?x=1",
        "http://llm.example.com#top",
        "http://user:secret@llm.example.com",
        "http://",  # no host
        "https://:443",
        "127.0.0.1:8100",  # no scheme
        "ftp://files.example.com",
        "http://llm.example.com:99999",
        "http://llm.example.com:0",
        "http://[::1",
    ],
)
def test_anything_but_an_origin_is_refused_at_load(entry: str) -> None:
    with pytest.raises(ValueError, match=r"origin|scheme|host|port|URL") as refused:
        egress.parse_origin(entry)
    with pytest.raises(ValueError, match=re.escape(str(refused.value))):
        Settings(egress_allow_marketplace=entry)


def test_allow_lists_are_empty_by_default_and_read_comma_separated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("EGRESS_ALLOW_MARKETPLACE", "EGRESS_ALLOW_DRAFT_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    empty = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (empty.egress_allow_marketplace, empty.egress_allow_draft_provider) == ([], [])
    assert EgressPolicy.from_settings(empty).allow == {p: frozenset() for p in Purpose}
    monkeypatch.setenv("EGRESS_ALLOW_MARKETPLACE", "http://127.0.0.1:8100, http://sandbox")
    monkeypatch.setenv("EGRESS_ALLOW_DRAFT_PROVIDER", "http://127.0.0.1:11434")
    read = Settings(_env_file=None)  # type: ignore[call-arg]
    assert read.egress_allow_marketplace == ["http://127.0.0.1:8100", "http://sandbox:80"]
    assert read.egress_allow_draft_provider == ["http://127.0.0.1:11434"]


LOCAL_DB = "postgresql+asyncpg://app:secret@localhost/sellerdesk"  # port 5432 by default
REMOTE_DB = "postgresql://app@postgres.internal:6432/sellerdesk"


@pytest.mark.parametrize(
    ("draft", "database_url", "ours"),
    [
        ("http://127.0.0.1:8100", LOCAL_DB, "on EGRESS_ALLOW_MARKETPLACE"),
        ("https://127.0.0.1:8100", LOCAL_DB, "on EGRESS_ALLOW_MARKETPLACE"),  # same service
        ("http://localhost:8100", LOCAL_DB, "on EGRESS_ALLOW_MARKETPLACE"),
        ("http://sandbox:8100", LOCAL_DB, "the marketplace endpoint WB_FEEDBACKS_BASE_URL"),
        ("http://127.0.0.1:5432", LOCAL_DB, "the database (DATABASE_URL)"),
        ("http://localhost:5432", LOCAL_DB, "the database (DATABASE_URL)"),
        ("http://postgres.internal:6432", REMOTE_DB, "the database (DATABASE_URL)"),
        ("http://127.0.0.1:6379", LOCAL_DB, "Redis (REDIS_URL)"),
        ("http://[::1]:6379", LOCAL_DB, "Redis (REDIS_URL)"),
        ("http://127.0.0.1:8000", LOCAL_DB, "the API (API_PORT)"),
        ("http://0.0.0.0:8000", LOCAL_DB, "the API (API_PORT)"),
        ("http://localhost:8000", LOCAL_DB, "the API (API_PORT)"),
        ("http://[::ffff:127.0.0.1]:8000", LOCAL_DB, "the API (API_PORT)"),
    ],
)
def test_the_draft_list_may_not_name_our_own_services(
    draft: str, database_url: str, ours: str
) -> None:
    with pytest.raises(ValueError, match="EGRESS_ALLOW_DRAFT_PROVIDER may not name") as refused:
        Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=database_url,
            redis_url="redis://127.0.0.1:6379/0",
            egress_allow_marketplace=["http://127.0.0.1:8100"],
            wb_feedbacks_base_url="http://sandbox:8100",
            egress_allow_draft_provider=["http://127.0.0.1:11434", draft],
        )
    assert ours in str(refused.value)
    assert "secret" not in str(refused.value).split("[type=")[0]


def test_a_local_llm_server_may_be_on_the_draft_list() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url="postgresql+asyncpg://app@127.0.0.1:5432/sellerdesk",
        redis_url="redis://127.0.0.1:6379/0",
        egress_allow_marketplace=["http://127.0.0.1:8100"],
        egress_allow_draft_provider=["http://127.0.0.1:11434", "http://gpu-box:8000"],
    )
    assert settings.egress_allow_draft_provider == [
        "http://127.0.0.1:11434",
        "http://gpu-box:8000",
    ]

"""Deterministic hashing, random draws and external identifiers.

Every id is a pure function of a seller key and an index, and the review/question ids and chat
reply signs decode back to their index, so no per-item lookup table is kept.
"""

import base64
import functools
import hashlib
import hmac
import struct
import uuid
from array import array
from collections.abc import Callable, Sequence
from typing import TypeVar

import orjson

T = TypeVar("T")

MASK64 = (1 << 64) - 1
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DIGIT = {c: i for i, c in enumerate(_ALPHABET)}
_ID_LEN = 20
_TAG_SPACE: int = 62**_ID_LEN >> 32  # ids are tag * 2**32 + scrambled index, below 62**20
_TAG_SPREAD = 0x9E3779B97F4A7C15F39CC0605CEDC835  # odd: spreads a 64-bit hash over the tag space
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # base 62**2, two digits per divmod


def derive(*parts: object) -> int:
    """A 64-bit key from any printable parts."""
    data = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def mix64(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread 64-bit hash of an int."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


Draw = Callable[[], int]
_DRAWS = 40  # a review needs about 30

assert array("I").itemsize == 4


def draws(key: int, index: int, count: int = _DRAWS) -> Draw:
    """Independent 32-bit values from one SHAKE digest of (key, index), one per call.

    An iterator over an array: a draw costs tens of nanoseconds, which keeps a 5000-item page
    fast. Asking for more than `count` raises StopIteration.
    """
    seed = struct.pack("<QQ", key & MASK64, index & MASK64)
    return iter(array("I", hashlib.shake_128(seed).digest(4 * count))).__next__


def pick(draw: Draw, items: Sequence[T]) -> T:
    return items[draw() % len(items)]


def chance(draw: Draw, p: float) -> bool:
    return draw() < p * 4294967296.0


def between(draw: Draw, lo: int, hi: int) -> int:
    return lo + draw() % (hi - lo + 1)


def unit(draw: Draw) -> float:
    return draw() / 4294967296.0


@functools.lru_cache(maxsize=256)
def _round_keys(key: int) -> tuple[int, int, int, int]:
    return mix64(key), mix64(key ^ 1), mix64(key ^ 2), mix64(key ^ 3)


def _round_fn(round_key: int, half: int) -> int:
    return (((half ^ round_key) * 0x9E3779B97F4A7C15) & MASK64) >> 48


def _permute(key: int, value: int) -> int:
    """A keyed bijection of 32-bit values (a 4-round Feistel network), so ids look random."""
    left, right = value >> 16, value & 0xFFFF
    for round_key in _round_keys(key):
        left, right = right, left ^ _round_fn(round_key, right)
    return (left << 16) | right


def _unpermute(key: int, value: int) -> int:
    left, right = value >> 16, value & 0xFFFF
    for round_key in reversed(_round_keys(key)):
        left, right = right ^ _round_fn(round_key, left), left
    return (left << 16) | right


def _tag(key: int, scrambled: int) -> int:
    return (mix64(key ^ scrambled) * _TAG_SPREAD) % _TAG_SPACE


def encode_item_id(key: int, index: int) -> str:
    """A 20-character id like WB's (e.g. `YX52RZEBhH9mrcYdEJuD`), unique per key and index."""
    scrambled = _permute(key, index)
    n = _tag(key, scrambled) << 32 | scrambled
    pairs = []
    for _ in range(_ID_LEN // 2):
        n, pair = divmod(n, 3844)
        pairs.append(_PAIRS[pair])
    return "".join(reversed(pairs))


def decode_item_id(key: int, external_id: str) -> int | None:
    """The index behind an id issued for this key, or None for anything else."""
    if len(external_id) != _ID_LEN:
        return None
    n = 0
    for c in external_id:
        digit = _DIGIT.get(c)
        if digit is None:
            return None
        n = n * 62 + digit
    scrambled = n & 0xFFFFFFFF
    if n >> 32 != _tag(key, scrambled):
        return None
    return _unpermute(key, scrambled)


def make_uuid(key: int, *parts: int) -> str:
    a = mix64(key)
    for part in parts:
        a = mix64(a ^ part)
    b = mix64(a ^ 0x5BD1E995)
    return str(uuid.UUID(int=(a << 64) | b, version=4))


def _mac(secret: bytes, payload: bytes, size: int) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()[:size]


def encode_sign(secret: bytes, index: int) -> str:
    """A chat replySign that names its chat and cannot be forged without the seller's secret."""
    payload = struct.pack(">I", index)
    return base64.urlsafe_b64encode(payload + _mac(secret, payload, 32)).decode().rstrip("=")


def decode_sign(secret: bytes, sign: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(sign + "=" * (-len(sign) % 4))
    except ValueError:
        return None
    payload, mac = raw[:4], raw[4:]
    if len(payload) != 4 or not hmac.compare_digest(mac, _mac(secret, payload, 32)):
        return None
    return int.from_bytes(payload, "big")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# Far in the future so a token survives restarts (it is derived from the seller name only).
TOKEN_EXPIRES = 4102444800  # 2100-01-01
# Questions & reviews (bit 7) and buyers chat (bit 9), as WB clients decode the `s` mask.
TOKEN_SCOPES = (1 << 7) | (1 << 9)


def make_token(secret: bytes, seller_uuid: str, seller_oid: int) -> str:
    """A JWT-shaped test token carrying the claims WB clients read (exp, s, sid, oid, t)."""
    header = {"alg": "ES256", "kid": "sandbox", "typ": "JWT"}
    claims = {
        "acc": 1,
        "ent": 1,
        "exp": TOKEN_EXPIRES,
        "id": make_uuid(derive(seller_uuid, "token")),
        "iid": seller_oid,
        "oid": seller_oid,
        "s": TOKEN_SCOPES,
        "sid": seller_uuid,
        "t": True,
        "uid": seller_oid,
    }
    signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha512).digest()
    return f"{signing_input}.{_b64(signature)}"

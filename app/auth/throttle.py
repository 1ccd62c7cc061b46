"""Failed-login limits per account and per client address, in Redis, shared by every API process.

Each limit is a counter with a fixed window: the first counted attempt creates the key with a TTL
of `login_failure_window_seconds`, later ones increment it. At `login_max_failures_per_account`
for the e-mail, or `login_max_failures_per_address` for the client address, login answers 429
with `Retry-After` (the window's remaining TTL), even to the right password, without checking it;
refused attempts are not counted, so they do not prolong the lockout. When the key expires, the
window has passed and the next attempt is checked again.

An attempt is counted *before* its password is checked (one Lua script: refuse if either counter
is at its limit, else increment both), and a success takes it back: the account's counter is
deleted (a success clears that account's failures) and the address's is decremented. So guesses
sent concurrently cannot all pass the check before any failure is recorded, and only failures
stay counted.

- The account is the e-mail normalised as login looks it up (trimmed, lower-case), whether or not
  a user has it: an unknown e-mail is throttled exactly like a known one, so the answers do not
  tell whether an account exists. Keys hold the e-mail's SHA-256, not the e-mail.
- The address is `request.client.host`: behind a proxy, uvicorn's `--proxy-headers` /
  `--forwarded-allow-ips` decide whether X-Forwarded-For is believed; we never read it ourselves.
  An IPv6 client is counted per /64, the block one subscriber usually holds.
- Fails closed: if Redis cannot be reached, login answers 503 and checks no password, rather
  than allowing unlimited guesses.

Not `app/core/ratelimit.py`'s GCRA: a token bucket spends a token on every attempt and refills
steadily, while here only failures count, a success resets the account, and a lockout lasts
until its window ends.
"""

import asyncio
import hashlib
import ipaddress
import logging
import math

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.auth.exceptions import LoginThrottled, LoginUnavailable
from app.core.config import Settings

logger = logging.getLogger(__name__)

PREFIX = "sellerdesk:login"
OP_TIMEOUT = 2.0  # seconds for one Redis round trip: a dead Redis must not hold a login

# KEYS: account counter, address counter. ARGV: account limit, address limit, window ms.
# Returns 0 when the attempt is counted, else ms until the window of a counter at its limit ends.
_ATTEMPT_LUA = """
local wait = 0
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or 0) >= tonumber(ARGV[i]) then
    wait = math.max(wait, redis.call('PTTL', key), 1)
  end
end
if wait > 0 then
  return wait
end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then
    redis.call('PEXPIRE', key, ARGV[3])
  end
end
return 0
"""

# KEYS: account counter, address counter. The attempt succeeded: it was not a failure.
_SUCCEEDED_LUA = """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 and redis.call('DECR', KEYS[2]) <= 0 then
  redis.call('DEL', KEYS[2])
end
return 1
"""

_REDIS_FAILURES = (RedisError, OSError, TimeoutError)


def client_address(host: str | None) -> str:
    """The address a client's failures are counted under (an IPv6 one's /64)."""
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def keys(email: str, address: str) -> list[str]:
    """The account's and the address's counters."""
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return [f"{PREFIX}:account:{account}", f"{PREFIX}:address:{address}"]


class LoginThrottle:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._attempt = redis.register_script(_ATTEMPT_LUA)
        self._succeeded = redis.register_script(_SUCCEEDED_LUA)
        self._limits = [
            settings.login_max_failures_per_account,
            settings.login_max_failures_per_address,
            settings.login_failure_window_seconds * 1000,
        ]

    async def attempt(self, email: str, address: str) -> None:
        """Count a login attempt, or raise LoginThrottled (429) if a limit is reached, or
        LoginUnavailable (503) if Redis cannot tell."""
        try:
            async with asyncio.timeout(OP_TIMEOUT):
                wait_ms = int(await self._attempt(keys=keys(email, address), args=self._limits))
        except _REDIS_FAILURES as exc:
            logger.error("login throttle: Redis failed (%s); login refused", type(exc).__name__)
            raise LoginUnavailable() from exc
        if wait_ms > 0:
            raise LoginThrottled(retry_after=math.ceil(wait_ms / 1000))

    async def succeeded(self, email: str, address: str) -> None:
        """The attempt's password was right: clear the account's failures, take the attempt
        back from the address. If Redis fails here the attempt stays counted as a failure."""
        try:
            async with asyncio.timeout(OP_TIMEOUT):
                await self._succeeded(keys=keys(email, address))
        except _REDIS_FAILURES as exc:
            logger.warning(
                "login throttle: could not clear the failures of a login (%s)",
                type(exc).__name__,
            )

"""Everything one sandbox process holds: sellers, clock, global limits and faults."""

import threading

from app.sandbox.clock import Clock
from app.sandbox.config import FaultSettings, RateLimits, SandboxConfig, SellerSpec
from app.sandbox.faults import FaultState
from app.sandbox.ratelimit import Decision, RateLimiter
from app.sandbox.seller import Seller


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.clock = Clock(config.clock_start, frozen=config.clock_frozen)
        self.secret = config.secret.encode()
        self._create_lock = threading.Lock()  # sellers are seeded in a worker thread
        self.reset()

    def reset(self) -> None:
        self.clock.offset = 0.0
        self.sellers: dict[str, Seller] = {}
        self._by_token: dict[str, Seller] = {}
        self._by_name: dict[str, Seller] = {}
        self.rate_limits = self.config.rate_limits.model_copy(deep=True)
        self.faults = FaultState(self.config.faults)
        self.limiter = RateLimiter()

    def create_seller(self, spec: SellerSpec) -> tuple[Seller, bool]:
        """Idempotent by name: a known name returns the existing seller untouched."""
        with self._create_lock:
            existing = self._by_name.get(spec.name)
            if existing is not None:
                return existing, False
            now = self.clock.now()
            seller = Seller(spec, self.secret, now, self.config.request_log_capacity)
            self.add_seller(seller)
            return seller, True

    def add_seller(self, seller: Seller) -> None:
        self.sellers[seller.id] = seller
        self._by_token[seller.token] = seller
        self._by_name[seller.name] = seller

    def authenticate(self, authorization: str | None) -> Seller | None:
        """`Authorization: <token>` or `Authorization: Bearer <token>`, as WB accepts both.
        A revoked token still names its seller: the gate answers it 401."""
        if not authorization:
            return None
        token = authorization.strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        return self._by_token.get(token)

    def limits_for(self, seller: Seller) -> RateLimits:
        return seller.rate_limits or self.rate_limits

    def faults_for(self, seller: Seller | None) -> FaultState:
        if seller is not None and seller.faults is not None:
            return seller.faults
        return self.faults

    def take_token(self, seller: Seller, group: str, now: float) -> Decision | None:
        """None when limits are off for this seller."""
        limits = self.limits_for(seller)
        if not limits.enabled:
            return None
        spec = limits.feedbacks if group == "feedbacks" else limits.chat
        return self.limiter.take(seller.id, group, spec, now)

    def set_global_limits(self, limits: RateLimits) -> None:
        self.rate_limits = limits
        self.limiter.forget()

    def set_seller_limits(self, seller: Seller, limits: RateLimits | None) -> None:
        seller.rate_limits = limits
        self.limiter.forget(seller.id)

    def set_global_faults(self, settings: FaultSettings) -> None:
        self.faults = FaultState(settings)

    def set_seller_faults(self, seller: Seller, settings: FaultSettings | None) -> None:
        seller.faults = None if settings is None else FaultState(settings)

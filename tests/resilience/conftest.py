from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.resilience.stack import Stack, wait_for

# What each fault test saw, printed as the closing note's table at the end of the module.
RESULTS: list[tuple[str, str, str, str, str]] = []


def record(fault: str, client_saw: str, recovery: str, lost: int, doubled: int) -> None:
    RESULTS.append((fault, client_saw, recovery, str(lost), str(doubled)))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("stack"), {"HEARTBEAT_INTERVAL_SECONDS": "2"})
    stack.start()
    yield stack
    stack.stop()
    if RESULTS:
        print("\n| fault | what the client saw | recovery | lost | doubled |")
        print("|---|---|---|---|---|")
        for row in RESULTS:
            print("| " + " | ".join(row) + " |")
        RESULTS.clear()


@dataclass
class Shop:
    """A seller of ours connected to its own sandbox seller."""

    stack: Stack
    token: str  # the operator's session
    marketplace_id: str  # the sandbox seller
    account_id: int
    # Interaction id → (channel, external id) of every item replied to.
    targets: dict[int, tuple[str, str]] = field(default_factory=dict)

    def open_items(self, channel: str, count: int) -> list[dict[str, Any]]:
        items = self.stack.items(self.token, channel=channel, status="open")
        fresh = [i for i in items if i["id"] not in self.targets]
        assert len(fresh) >= count, f"only {len(fresh)} open {channel}s left"
        return fresh[:count]

    def reply_all(self, items: list[dict[str, Any]], tag: str) -> dict[int, int]:
        """Queue one reply per item through the bulk endpoint; {interaction id: reply id}."""
        replies: dict[int, int] = {}
        for start in range(0, len(items), 100):
            chunk = items[start : start + 100]
            body = {
                "items": [
                    {"interaction_id": i["id"], "text": f"Спасибо за отзыв! Мы учтём. ({tag} {n})"}
                    for n, i in enumerate(chunk, start)
                ]
            }
            answer = self.stack.ok("POST", "/api/v1/replies/bulk", self.token, json=body)
            for result in answer["items"]:
                assert result["reply"], result
                replies[result["interaction_id"]] = result["reply"]["id"]
        for item in items:
            self.remember(item)
        return replies

    def remember(self, item: dict[str, Any]) -> None:
        self.targets[item["id"]] = (item["channel"], item["external_id"])

    def reply_states(self, reply_ids: list[int]) -> dict[int, str]:
        return {
            rid: self.stack.ok("GET", f"/api/v1/replies/{rid}", self.token)["state"]
            for rid in reply_ids
        }

    def wait_sent(self, replies: dict[int, int], timeout: float) -> float:
        """Seconds until every reply is `sent` (failing at once on a dead one)."""
        pending = set(replies.values())

        def all_sent() -> None:
            for rid, state in self.reply_states(sorted(pending)).items():
                assert state != "dead", f"reply {rid} is dead"
                if state == "sent":
                    pending.discard(rid)
            if pending:
                some = [self.stack.ok("GET", f"/api/v1/replies/{rid}", self.token)
                        for rid in sorted(pending)[:3]]  # fmt: skip
                raise AssertionError(f"{len(pending)} not sent yet, e.g. {some}")

        return _timed(lambda: wait_for(all_sent, timeout, "every reply sent", every=1.0))

    def delivered(self, replies: dict[int, int]) -> tuple[int, int]:
        """(lost, doubled) among these replies, counted by the marketplace."""
        deliveries = self.stack.deliveries(self.marketplace_id)
        counts = [deliveries.get(self.targets[iid], 0) for iid in replies]
        return sum(1 for n in counts if n == 0), sum(1 for n in counts if n > 1)

    def sync_now(self, **body: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.stack.ok("POST", "/api/v1/sync", self.token, json=body)
        return answer

    def counts(self) -> dict[str, int]:
        by_channel: dict[str, int] = self.stack.ok(
            "GET", "/api/v1/interactions/counts", self.token
        )["by_channel"]
        return by_channel

    def marketplace_counts(self) -> dict[str, Any]:
        counts: dict[str, Any] = self.stack.sandbox("GET", f"/sellers/{self.marketplace_id}")[
            "counts"
        ]
        return counts


def _timed(block: Any) -> float:
    import time

    started = time.monotonic()
    block()
    return time.monotonic() - started


def make_shop(stack: Stack, name: str, **spec: Any) -> Shop:
    seller = stack.marketplace_seller(name=name, **spec)
    token = stack.new_operator(name)
    account = stack.connect(token, seller["token"])
    return Shop(stack, token, str(seller["seller_id"]), int(account["id"]))

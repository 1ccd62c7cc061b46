"""What was measured and how it prints: the scenarios with their targets, the latency table,
the per-query search block and the one-line summaries."""

import statistics
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.report import Latencies, nearest_rank

# Targets (the issues' words; never adjusted here): p95 in ms at concurrency 8. Issue 15
# tightened list and card to what they already did (p95 ≈ 9 and ≈ 7 ms on 2 cores) and gave the
# timeline one.
TARGET_LIST_MS = 15.0
TARGET_CARD_MS = 15.0
TARGET_TIMELINE_MS = 20.0
TARGET_SEARCH_MS = 60.0
TARGETS_MS = {
    "list": TARGET_LIST_MS,
    "card": TARGET_CARD_MS,
    "timeline": TARGET_TIMELINE_MS,
    "search": TARGET_SEARCH_MS,
}  # baseline and compare: reported without one


@dataclass
class Scenario:
    name: str
    kind: str  # one of SCENARIO_KINDS
    urls: list[str]  # the measured requests rotate through these

    @property
    def target_ms(self) -> float | None:
        return TARGETS_MS.get(self.kind)


@dataclass
class Measured(Latencies):
    scenario: Scenario = field(kw_only=True)
    sequential: list[float] = field(default_factory=list)
    api_cpu: float = float("nan")  # seconds, during the measured concurrent phase
    pg_cpu: float = float("nan")
    bench_cpu: float = float("nan")

    @property
    def ok(self) -> bool | None:
        target = self.scenario.target_ms
        if target is None:
            return None
        return (
            self.pct(0.95) <= target
            and self.non_ok == 0
            and not self.stopped_early
            and len(self.latencies) >= 1000
        )


@dataclass
class Report:
    concurrency: int
    notes: list[str] = field(default_factory=list)
    load: list[tuple[str, str, str]] = field(default_factory=list)  # step, rows, seconds
    measured: list[Measured] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)

    def missed(self) -> list[Measured]:
        return [m for m in self.measured if m.ok is False]

    def body(self) -> str:
        parts = []
        if self.load:
            parts.append(f"### Load\n\n{self.load_table()}\n")
        parts.append(f"### Latency (client-side, concurrency {self.concurrency})\n")
        parts.append(self.latency_table(self.concurrency))
        parts += [f"\n- skipped: {skipped}" for skipped in self.skipped]
        parts += [f"\n{block}" for block in self.blocks]
        return "\n".join(parts)

    def verdict(self) -> str:
        missed = self.missed()
        if not missed:
            return "All targets met."
        names = "; ".join(f"{m.scenario.name} (p95 {m.pct(0.95):.1f} ms)" for m in missed)
        return f"**{len(missed)} target(s) MISSED:** {names}"

    def load_table(self) -> str:
        lines = ["| step | rows | time |", "|---|---|---|"]
        lines += [f"| {step} | {rows} | {secs} |" for step, rows, secs in self.load]
        return "\n".join(lines)

    def latency_table(self, concurrency: int) -> str:
        head = (
            "| scenario | requests | non-200 | p50 ms | p95 ms | p99 ms | req/s | target p95 "
            "| result | p50 ms at c=1 | API CPU ms/req | API process busy | Postgres CPU ms/req "
            "| bench CPU ms/req | KB/resp |"
        )
        lines = [head, "|" + "---|" * 15]
        for m in self.measured:
            n = max(len(m.latencies), 1)
            target = f"≤ {m.scenario.target_ms:g} ms" if m.scenario.target_ms else "—"
            result = {None: "", True: "ok", False: "**MISSED**"}[m.ok]
            count = f"{m.count:,}" + (" (time limit)" if m.stopped_early else "")
            seq = statistics.median(m.sequential) * 1000 if m.sequential else float("nan")
            cells = [
                m.scenario.name,
                count,
                str(m.non_ok),
                f"{m.pct(0.50):.1f}",
                f"{m.pct(0.95):.1f}",
                f"{m.pct(0.99):.1f}",
                f"{len(m.latencies) / m.wall:.0f}" if m.wall else "—",
                f"{target} (c={concurrency})" if m.scenario.target_ms else target,
                result,
                f"{seq:.1f}",
                f"{m.api_cpu / n * 1000:.2f}",
                f"{m.api_cpu / m.wall:.0%}" if m.wall else "—",
                f"{m.pg_cpu / n * 1000:.2f}",
                f"{m.bench_cpu / n * 1000:.2f}",
                f"{m.body_bytes / n / 1024:.1f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def per_query_block(measured: Sequence[Measured]) -> str:
    """Each search query's own latencies in the concurrent phase: which make the p95."""
    lines = []
    for m in measured:
        if m.scenario.kind not in ("search", "compare") or not m.latencies:
            continue
        slow = nearest_rank(m.latencies, 0.95)
        lines += [
            f"**{m.scenario.name}** ({len(m.latencies):,} requests at concurrency 8):",
            "",
            "| query | requests | p50 ms | p95 ms | share of the requests above the p95 |",
            "|---|---|---|---|---|",
        ]
        above = sum(1 for t in m.latencies if t > slow)
        for url, times in sorted(m.by_request.items(), key=lambda kv: -nearest_rank(kv[1], 0.5)):
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("q", [url])[0]
            mine = sum(1 for t in times if t > slow)
            cells = [f"`{q}`", f"{len(times):,}", f"{nearest_rank(times, 0.5) * 1000:.1f}"]
            cells += [f"{nearest_rank(times, 0.95) * 1000:.1f}", f"{mine / max(above, 1):.0%}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(["### Search latency by query", "", *lines]) if lines else ""


def summary_of(m: Measured) -> str:
    target = m.scenario.target_ms
    check = ""
    if target is not None:
        check = f"  (target p95 ≤ {target:g} ms: {'ok' if m.ok else 'MISSED'})"
    seq = statistics.median(m.sequential) * 1000 if m.sequential else float("nan")
    return (
        f"  {m.count:,} requests, {m.non_ok} non-200, p50 {m.pct(0.5):.1f} / p95 "
        f"{m.pct(0.95):.1f} / p99 {m.pct(0.99):.1f} ms, "
        f"{len(m.latencies) / m.wall if m.wall else 0:.0f} req/s; c=1 p50 {seq:.1f} ms{check}"
    )

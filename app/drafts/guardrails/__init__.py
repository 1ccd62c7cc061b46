"""Guardrails for reply texts: what the marketplace would reject or punish (contact details and
links, asking for or paying for a rating, money moved off the platform, a disclosed bot), tone
(promises, blame, dismissive wording), unsolicited refund offers, and the marketplace's limits.

`check()` returns findings; drafts carry all of them, and sending is blocked only by
`blocking()` ones (severity "error"). `rules.py` holds the tables (what each rule matches, the
severities per channel, the limits) and the reasoning behind them; `engine.py` normalises the
text (so obfuscation does not pass) and matches the rules.
"""

from app.connectors.base import Channel
from app.drafts.guardrails.engine import (
    Finding,
    blocking,
    check,
    max_length,
    quotable,
    wording,
)
from app.drafts.guardrails.rules import REFUND_INTENTS, Severity

__all__ = [
    "REFUND_INTENTS",
    "Channel",
    "Finding",
    "Severity",
    "blocking",
    "check",
    "max_length",
    "quotable",
    "wording",
]

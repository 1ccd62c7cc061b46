"""How a sent reply relates to the last draft: accepted as drafted, edited, or written by hand."""

import difflib
import re

# At or above this similarity (difflib ratio of the normalised texts) an edited draft is still
# the draft; below it the operator wrote their own reply.
EDITED_MIN_SIMILARITY = 0.6

_SPACE = re.compile(r"\s+")


def _normal(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def classify(sent: str, draft: str | None) -> str:
    if not draft:
        return "reply_manual"
    a, b = _normal(sent), _normal(draft)
    if a == b:
        return "draft_accepted"
    similarity = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
    return "draft_edited" if similarity >= EDITED_MIN_SIMILARITY else "reply_manual"


def same_text(a: str | None, b: str) -> bool:
    """Whether the marketplace shows our text (it may trim or re-space it)."""
    return a is not None and _normal(a) == _normal(b)

"""Draft providers (product.md §4): pure code, no database access.

The caller (drafts service) loads the interaction, the seller's previous replies on the same
product and the product's typical intents, builds a `DraftRequest` and asks the provider chosen
in the seller's settings (`provider_for`). Every provider answers with a `DraftResult` that says
which context it used (`sources`) and, for a remote provider that failed, why the offline
provider answered instead (`fallback_reason`). Providers never raise for a bad remote service.

- `base`: the request, the result and the `DraftProvider` protocol;
- `offline`: deterministic templates (their Russian text in `phrases`), the default;
- `openai_compat`: an OpenAI-compatible chat-completions API, falling back to offline.
"""

from app.core.egress import EgressPolicy
from app.drafts.providers.base import (
    MAX_LENGTH,
    Channel,
    DraftProvider,
    DraftRequest,
    DraftResult,
    PreviousReply,
    first_name,
)
from app.drafts.providers.offline import OfflineProvider
from app.drafts.providers.openai_compat import MisconfiguredProvider, OpenAICompatProvider

__all__ = [
    "MAX_LENGTH",
    "Channel",
    "DraftProvider",
    "DraftRequest",
    "DraftResult",
    "MisconfiguredProvider",
    "OfflineProvider",
    "OpenAICompatProvider",
    "PreviousReply",
    "first_name",
    "provider_for",
]


def provider_for(
    kind: str,
    *,
    model: str | None,
    base_url: str | None,
    api_key: str | None,
    policy: EgressPolicy,
    timeout: float = 10.0,
) -> DraftProvider:
    """The provider named in the seller's settings (`draft_provider`).

    `api_key` is the decrypted key; `policy` says where a remote provider may be called. An
    `openai_compat` setting without a base URL or a model yields a provider that always falls
    back to offline and says why; an unknown kind is a programming error (the settings schema
    only allows the two names).
    """
    if kind == "offline":
        return OfflineProvider()
    if kind == "openai_compat":
        if not base_url or not model:
            unset = (
                name for name, value in (("base URL", base_url), ("model", model)) if not value
            )
            return MisconfiguredProvider(
                f"openai_compat not configured: no {' and no '.join(unset)}"
            )
        return OpenAICompatProvider(base_url, model, api_key, policy, timeout=timeout)
    raise ValueError(f"unknown draft provider {kind!r}")

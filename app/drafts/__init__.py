"""Reply drafts: providers (offline templates, OpenAI-compatible) and guardrails."""

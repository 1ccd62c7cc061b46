"""Replies to the marketplace: a transactional outbox and the worker that sends it, at most once."""

from app.core.backoff import full_jitter


def test_full_jitter_stays_under_the_capped_exponential() -> None:
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (10, 5.0), (10_000, 5.0)):
        waits = [full_jitter(attempt, 0.5, 5.0) for _ in range(200)]
        assert all(0 <= wait <= ceiling for wait in waits)
        assert max(waits) > ceiling / 2  # spread over the whole range, not a fixed delay


def test_without_a_cap_it_keeps_doubling() -> None:
    assert max(full_jitter(6, 0.05) for _ in range(200)) > 1.6

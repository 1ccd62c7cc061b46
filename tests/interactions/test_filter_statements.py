"""Cached list statements are keyed by `filter_shape` and bound with `filter_values`, so both
must agree with what `conditions` builds, for every combination of filters."""

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import BindParameter
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import visitors

from app.interactions import repository
from app.interactions.schemas import InteractionFilters

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)

CHOICES: dict[str, list[Any]] = {
    "channel": [None, ["chat"], ["chat", "review"], ["review"]],
    "status": [None, ["open"]],
    "rating": [None, [1], [1, 5]],
    "needs_response": [None, True, False],
    "nm_id": [None, 7, 8],
    "sla": [None, "overdue", "due_soon", "on_track", "none"],
    "assignee": [None, "me", "none", "42"],
    "q": [None, "брак"],
}


def _filters() -> list[InteractionFilters]:
    names = list(CHOICES)
    return [
        InteractionFilters(**dict(zip(names, values, strict=True)))
        for values in itertools.product(*CHOICES.values())
    ]


def _binds(clauses: list[Any]) -> dict[str, Any]:
    return {
        bind.key: bind.value
        for clause in clauses
        for bind in visitors.iterate(clause)
        if isinstance(bind, BindParameter) and not bind.unique  # not the literals SQLAlchemy binds
    }


def _sql(clauses: list[Any]) -> str:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return " AND ".join(str(clause.compile(dialect=dialect)) for clause in clauses)


@pytest.mark.slow
def test_one_shape_is_one_statement_and_the_values_are_the_bound_ones() -> None:
    sql_of_shape: dict[tuple[Any, ...], str] = {}
    for relevance in (False, True):
        for f in _filters():
            where = repository.conditions(3, f, user_id=11, now=NOW, relevance_window=relevance)
            shape = (repository.filter_shape(f), relevance)
            sql = sql_of_shape.setdefault(shape, _sql(where))
            assert sql == _sql(where), f
            values = repository.filter_values(3, f, user_id=11, now=NOW)
            for name, value in _binds(where).items():
                assert values[name] == value, (name, f)


@pytest.mark.slow
def test_different_shapes_are_different_statements() -> None:
    statements: dict[str, tuple[Any, ...]] = {}
    for f in _filters():
        where = repository.conditions(3, f, user_id=11, now=NOW)
        shape = repository.filter_shape(f)
        assert statements.setdefault(_sql(where), shape) == shape, f

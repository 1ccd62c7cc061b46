"""Statements executed as the driver's SQL, rendered once instead of on every execution.

SQLAlchemy renders a statement's inlined values (`literal_execute` parameters, expanding IN
lists) into its SQL and computes the statement's cache key on every execution: ≈ 0.3 ms for the
card's statement, ≈ 1 ms for the search's twenty stages, on requests that cost Postgres a few
milliseconds. Both classes keep SQLAlchemy's events (`before_cursor_execute` sees the SQL)."""

from collections.abc import Sequence
from typing import Any

from cachetools import LRUCache
from sqlalchemy import BindParameter, CursorResult, Dialect, Select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import visitors
from sqlalchemy.sql.compiler import SQLCompiler

# Where a positional argument comes from: a parameter, or one element of an expanding list.
Slot = tuple[str, int | None]
# The SQL, its positional arguments' slots, and the values SQLAlchemy bound itself.
Rendering = tuple[str, tuple[Slot, ...], dict[str, Any]]


class Rendered:
    """A statement rendered to the driver's SQL once per set of the values written into it: its
    `literal_execute` parameters (the search's hourly stages) and the length of each expanding
    IN list. Every other parameter stays bound, so Postgres keeps one prepared statement."""

    def __init__(self, statement: Select[Any], renderings: int = 32) -> None:
        self.statement = statement
        self._compiled: SQLCompiler | None = None
        self._inlined: tuple[str, ...] = ()
        self._expanding: tuple[str, ...] = ()
        self._sql: LRUCache[tuple[Any, ...], Rendering] = LRUCache(renderings)

    def _compile(self, dialect: Dialect) -> SQLCompiler:
        if self._compiled is None:
            compiled = self.statement.compile(dialect=dialect)
            assert isinstance(compiled, SQLCompiler)
            inlined = {bind.key for bind in compiled.literal_execute_params}
            expanding = {bind.key for bind in compiled.post_compile_params} - inlined
            self._inlined, self._expanding = tuple(sorted(inlined)), tuple(sorted(expanding))
            self._compiled = compiled
        return self._compiled

    def render(self, dialect: Dialect, params: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
        """The driver's SQL for these values and its positional arguments."""
        compiled = self._compile(dialect)
        key = (
            *(params.get(name) for name in self._inlined),
            *(len(params[name]) for name in self._expanding if name in params),
        )
        rendered = self._sql.get(key)
        if rendered is None:
            rendered = self._sql[key] = self._render(compiled, params)
        sql, slots, constants = rendered
        values = {**constants, **params} if constants else params
        return sql, tuple(values[k] if i is None else values[k][i] for k, i in slots)

    @staticmethod
    def _render(compiled: SQLCompiler, params: dict[str, Any]) -> Rendering:
        state = compiled.construct_expanded_state(params)
        assert not state.processors, "a bind processor would be skipped"
        origin: dict[str, Slot] = {
            name: (key, index)
            for key, names in (state.parameter_expansion or {}).items()
            if key in params
            for index, name in enumerate(names)
        }
        positions = state.positiontup or ()
        # SQLAlchemy's own parameters (`x NOT IN ('', 'T')`) keep the values they were built with.
        constants = {
            name: state.parameters[name]
            for name in positions
            if name not in params and name not in origin
        }
        slots = tuple(origin.get(name, (name, None)) for name in positions)
        return state.statement, slots, constants

    async def execute(
        self, connection: AsyncConnection, params: dict[str, Any]
    ) -> CursorResult[Any]:
        assert connection.dialect.positional  # asyncpg: $1, $2, …
        sql, args = self.render(connection.dialect, params)
        return await connection.exec_driver_sql(sql, args)


class Precompiled:
    """A statement compiled once to the driver's SQL, every constant inline and only `params`
    bound: a call builds no statement and computes no cache key, and the server's generic plan
    for the prepared statement sees the constants it depends on (per-channel index ranges, a
    partial index's predicate)."""

    def __init__(self, statement: Select[Any], params: Sequence[str]) -> None:
        self.statement = statement
        self.params = tuple(params)
        self._compiled: tuple[str, tuple[str, ...]] | None = None

    def _sql(self, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
        if self._compiled is None:

            def inline(bind: BindParameter[Any]) -> None:
                if bind.key not in self.params:
                    bind.literal_execute = True

            inlined = visitors.cloned_traverse(self.statement, {}, {"bindparam": inline})
            state = inlined.compile(dialect=dialect).construct_expanded_state(
                dict.fromkeys(self.params)
            )
            self._compiled = (state.statement, tuple(state.positiontup or ()))
        return self._compiled

    async def first(self, connection: AsyncConnection, **values: Any) -> dict[str, Any] | None:
        """The first row by column name (json and jsonb decoded by the driver), or None."""
        sql, names = self._sql(connection.dialect)
        if connection.dialect.positional:
            result = await connection.exec_driver_sql(sql, tuple(values[n] for n in names))
        else:
            result = await connection.exec_driver_sql(sql, values)
        row = result.mappings().first()
        return None if row is None else dict(row)

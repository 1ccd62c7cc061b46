"""Statement templates: a statement built once per SQLAlchemy cache key of the clauses it is
built from, then executed with each request's values.

What it buys: the inbox search's statement has twenty stages, each repeating the filters;
building it cost ≈ 5 ms of CPU per request, more than Postgres spends running it, and the
search's p95 at concurrency 8 on 2 cores is bound by the API's CPU (the list's too, by 0.25 ms).
`lambda_stmt` does not help: it clones the whole statement on every execution to put its values
in. Everything past the lookup is SQLAlchemy's own: the template runs through
`connection.execute()` and the compiled cache (a statement memoizes its cache key), which
renders its `literal_execute` and expanding parameters; events see the SQL as usual.

How: the key is SQLAlchemy's cache key of the `clauses` (their structure, not their values: the
key its compiled cache uses) plus what else decides the structure (`*shape`). The request's own
clauses give the values: their bound parameters line up, in cache-key order, with those of the
clauses the template was built from (as the compiled cache lines them up), and are passed to the
execution by the template's parameter keys. So `build` may take request values only from the
clauses, or as named parameters that the caller passes itself.
"""

from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar, cast

from cachetools import LRUCache
from sqlalchemy import BindParameter, ColumnElement, Executable
from sqlalchemy.sql.expression import ClauseList

S = TypeVar("S", bound=Executable)


class Templates:
    """Built statements by the cache key of their clauses (an LRU of `size`)."""

    def __init__(self, size: int = 512) -> None:
        self._built: LRUCache[Hashable, tuple[Executable, list[BindParameter[Any]]]]
        self._built = LRUCache(size)

    def get(
        self, clauses: Sequence[ColumnElement[Any]], build: Callable[[], S], *shape: Hashable
    ) -> tuple[S, dict[str, Any]]:
        """The statement `build()` makes from these clauses (built now, or for clauses of the
        same structure before) and the values of its parameters that the clauses carry."""
        found = ClauseList(*clauses)._generate_cache_key()
        if found is None:  # a clause SQLAlchemy cannot cache: built every time
            return build(), {}
        key = (found.key, *shape)
        entry = self._built.get(key)
        if entry is None:
            entry = self._built[key] = (build(), list(found.bindparams))
        statement, binds = entry
        values = {
            template.key: bind.effective_value
            for template, bind in zip(binds, found.bindparams, strict=True)
        }
        return cast(S, statement), values

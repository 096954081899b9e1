"""Reads of a fixed shape, compiled by the ORM once per process and then run with a new key.

A job handler loads its target by primary key with the same `select_related` on every run: building
that SQL (joins, the columns of every related model) costs the ORM several times what PostgreSQL
spends running it. `PreparedGet` keeps the SQL and the ORM's own row-to-objects plan (converters,
related populators), and for each key only binds the parameter, runs the statement and builds the
objects the way `QuerySet.get()` would.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.query import get_related_populators

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]
    key_index: int
    model: type[models.Model]
    init_list: list[str]
    start: int
    end: int
    converters: dict[int, tuple[list[Any], Any]]
    populators: list[Any]


class PreparedGet(Generic[M]):
    """`PreparedGet(lambda: Model.objects.select_related(...)).get(pk)`: the queryset's object with
    that primary key, or `Model.DoesNotExist`, as `queryset.get(pk=pk)` but compiled once per
    process and database. The queryset must not depend on anything that changes between calls."""

    def __init__(self, build: Callable[[], models.QuerySet[M]]) -> None:
        self._build = build
        self.model = build().model
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _compile(self, using: str) -> _Compiled:
        queryset = self._build()
        pk = queryset.model._meta.pk
        assert pk is not None
        connection = connections[using]
        # A key no row has, to find where the ORM puts it among the statement's parameters.
        probe: Any = uuid.uuid4() if isinstance(pk, models.UUIDField) else -7_340_029_117
        compiler = queryset.filter(pk=probe).query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        prepped = pk.get_db_prep_value(probe, connection)
        (key_index,) = [i for i, p in enumerate(params) if p == prepped]
        select, klass_info = compiler.select, compiler.klass_info
        assert klass_info is not None and not compiler.annotation_col_map
        fields = klass_info["select_fields"]
        # Django 6 passes the queryset's fetch mode to the populators too.
        fetch_mode = (queryset._fetch_mode,) if hasattr(queryset, "_fetch_mode") else ()
        start, end = fields[0], fields[-1] + 1
        return _Compiled(
            sql=sql,
            params=tuple(params),
            key_index=key_index,
            model=klass_info["model"],
            init_list=[f[0].target.attname for f in select[start:end]],
            start=start,
            end=end,
            converters=compiler.get_converters([f[0] for f in select]),
            populators=get_related_populators(klass_info, select, using, *fetch_mode),
        )

    def _compiled_for(self, using: str) -> _Compiled:
        compiled = self._compiled.get(using)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.setdefault(using, self._compile(using))
        return compiled

    def get(self, pk: Any, *, using: str = DEFAULT_DB_ALIAS) -> M:
        compiled = self._compiled_for(using)
        connection = connections[using]
        model_pk = compiled.model._meta.pk
        assert model_pk is not None
        params = list(compiled.params)
        params[compiled.key_index] = model_pk.get_db_prep_value(model_pk.to_python(pk), connection)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchmany(2)
        if not rows:
            missing = compiled.model.DoesNotExist  # type: ignore[attr-defined]
            raise missing(f"{compiled.model._meta.object_name} matching query does not exist.")
        return self.from_row(rows[0], using=using)

    def keyed_by(self, key_sql: str, key_params: list[Any], *, using: str = DEFAULT_DB_ALIAS) -> tuple[str, list[Any]]:
        """The statement with its key given by an SQL expression (e.g. a subquery) instead of a
        value, and its parameters: to send it along with another statement in one round trip."""
        compiled = self._compiled_for(using)
        parts = _PLACEHOLDER.split(compiled.sql)
        assert len(parts) == len(compiled.params) + 1
        i = compiled.key_index
        sql = "%s".join(parts[: i + 1]) + key_sql + "%s".join(parts[i + 1 :])
        return sql, [*compiled.params[:i], *key_params, *compiled.params[i + 1 :]]

    def from_row(self, row: Any, *, using: str = DEFAULT_DB_ALIAS) -> M:
        """The object (with its related objects) that a row of this statement stands for."""
        compiled = self._compiled_for(using)
        connection = connections[using]
        row = list(row)
        for i, (functions, expression) in compiled.converters.items():
            for function in functions:
                row[i] = function(row[i], expression, connection)
        obj = compiled.model.from_db(using, compiled.init_list, row[compiled.start : compiled.end])
        for populator in compiled.populators:
            populator.populate(row, obj)
        return obj  # type: ignore[return-value]


# A parameter placeholder of the ORM's SQL (a literal percent sign is doubled, "%%").
_PLACEHOLDER = re.compile(r"(?<!%)%s")

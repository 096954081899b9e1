"""One state machine per resource: a declared table of allowed transitions, and one function that
moves a resource along it and records the move in its history (portal.models.StateTransition).

Every state change of a resource goes through `StateMachine.transition`, which

- refuses a move the table doesn't have (`IllegalTransition`, nothing written);
- writes the new state and `updated_at` with a compare-and-swap on the state the caller read, so a
  stale read can't overwrite a newer state (`StaleTransition`, nothing written);
- records the move (from, to, job, actor, reason, the database's time) in the same transaction.

It is safe inside a job's fenced transaction (portal.jobs `_finish`): it is one conditional UPDATE
and one INSERT, and its refusals leave the surrounding transaction usable.

Why not django-fsm-2 and django-fsm-log: their transitions are model methods that check the state
read into memory and write it on `save()`, and the log is written by a signal with the
application's clock, without the job. Here the writes come from job hooks that know only the job,
must compare-and-swap on the current state and must record the job; that is the few lines below.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Mapping
from typing import Any

from django.db import connection, models, transaction
from django.db.models.functions import Now

from portal.exceptions import NotAllowed
from portal.jobs import EndPart, job_end_part
from portal.models import Job, StateTransition

logger = logging.getLogger(__name__)


class IllegalTransition(NotAllowed):
    """The resource's transition table has no such move."""

    code = "illegal_transition"


class StaleTransition(IllegalTransition):
    """The resource is no longer in the state the caller read: something else moved it meanwhile."""

    code = "stale_state"


def _column(meta: Any, name: str) -> str:
    field = meta.get_field(name)
    assert isinstance(field, models.Field)
    return str(field.column)


@dataclasses.dataclass(frozen=True)
class StateMachine:
    """The states of one kind of resource and the moves allowed between them.

    `transitions` maps each state to the states it may move to. `updated_field` is the timestamp
    that moves with the state; `subscription_field` (a foreign key) is copied onto history rows so
    a subscription's usage can be read without joining every kind of resource.
    """

    model: type[models.Model]
    initial: str
    transitions: Mapping[str, Collection[str]]
    field: str = "state"
    updated_field: str | None = "updated_at"
    subscription_field: str | None = "subscription"
    _table: frozenset[tuple[str, str]] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        choices = getattr(self.model._meta.get_field(self.field), "choices", None) or ()
        known = {value for value, _ in choices}
        pairs = frozenset((source, target) for source, targets in self.transitions.items() for target in targets)
        unknown = {state for pair in pairs for state in pair} - known
        if unknown:
            raise ValueError(f"{self.resource_type}: transitions name unknown states {sorted(unknown)}")
        object.__setattr__(self, "_table", pairs)

    @property
    def resource_type(self) -> str:
        return self.model._meta.label_lower

    def allows(self, source: str, target: str) -> bool:
        return (source, target) in self._table

    def transition(
        self,
        obj: models.Model,
        *,
        target: str,
        source: str | None = None,
        job: Job | None = None,
        actor: Any = None,
        reason: str = "",
    ) -> StateTransition:
        """Move `obj` from `source` (default: the state read into `obj`) to `target` and record it.

        `actor` defaults to whoever started `job`. Updates `obj` in memory; returns the history row.
        """
        source = getattr(obj, self.field) if source is None else source
        label = f"{obj._meta.verbose_name} '{obj}'"
        if not self.allows(source, target):
            raise IllegalTransition(f"The {label} can't go from {source} to {target}.")
        if connection.vendor == "postgresql":
            entry = self._move_and_record(obj, source, target, job=job, actor=actor, reason=reason)
        else:
            changes: dict[str, Any] = {self.field: target}
            if self.updated_field:
                changes[self.updated_field] = Now()
            # No savepoint: a refusal raises after the block, with nothing written, so a caller may
            # catch it and carry on in its own transaction (a job's hooks do).
            with transaction.atomic(savepoint=False):
                moved = type(obj)._default_manager.filter(pk=obj.pk, **{self.field: source}).update(**changes)
                entry = self._record(obj, source, target, job=job, actor=actor, reason=reason) if moved else None
        if entry is None:
            raise StaleTransition(f"The {label} is no longer {source}; it changed meanwhile.")
        setattr(obj, self.field, target)
        if self.updated_field:  # the row's own value is the UPDATE's time, a few microseconds earlier
            setattr(obj, self.updated_field, entry.at)
        return entry

    def transition_if_unchanged(
        self,
        obj: models.Model,
        *,
        source: str,
        target: str,
        job: Job | None = None,
        actor: Any = None,
        reason: str = "",
    ) -> None:
        """`transition()` for a job's hooks: if something else moved `obj` from `source` meanwhile,
        its newer state stands (logged) and the job still ends; an illegal move still raises.

        Since nothing depends on whether it moved, inside a run's end on PostgreSQL it is handed to
        the job framework (portal.jobs.job_end_part) and sent inside the statement that ends the
        job, gated on that end, instead of in a round trip of its own; `obj` is then not updated
        in memory."""
        if not self.allows(source, target):
            label = f"{obj._meta.verbose_name} '{obj}'"
            raise IllegalTransition(f"The {label} can't go from {source} to {target}.")
        if connection.vendor == "postgresql":
            sql, params = self._move_and_record_sql(obj, source, target, job=job, actor=actor, reason=reason)

            def build(gate: str, prefix: str) -> tuple[str, list[Any], str]:
                ctes = sql.format(moved=f"{prefix}moved", gate=f" AND {gate}", recorded=f"{prefix}recorded")
                return ctes, list(params), f"EXISTS (SELECT 1 FROM {prefix}recorded)"  # noqa: S608

            def on_result(moved: bool) -> None:
                if not moved:
                    self._left_newer(obj, source, job)

            if job_end_part(EndPart(build, on_result)):
                return
        try:
            self.transition(obj, source=source, target=target, job=job, actor=actor, reason=reason)
        except StaleTransition:
            self._left_newer(obj, source, job)

    def _left_newer(self, obj: models.Model, source: str, job: Job | None) -> None:
        logger.warning(
            "job %s: %s %s is no longer %s; leaving its newer state",
            getattr(job, "pk", None),
            obj._meta.verbose_name,
            obj.pk,
            source,
        )

    def record_created(
        self, obj: models.Model, *, job: Job | None = None, actor: Any = None, reason: str = ""
    ) -> StateTransition:
        """The first row of a resource's history: it came to exist in its initial state."""
        state = getattr(obj, self.field)
        if state != self.initial:
            raise IllegalTransition(f"A new {obj._meta.verbose_name} starts {self.initial}, not {state}.")
        return self._record(obj, "", state, job=job, actor=actor, reason=reason)

    def history(self, pk: Any) -> models.QuerySet[StateTransition]:
        """Every recorded change of the resource with this key, oldest first (unscoped)."""
        return StateTransition.objects.filter(resource_type=self.resource_type, resource_id=str(pk))

    def _move_and_record(
        self, obj: models.Model, source: str, target: str, *, job: Job | None, actor: Any, reason: str
    ) -> StateTransition | None:
        """The compare-and-swap and the history row as one statement (PostgreSQL): an UPDATE whose
        RETURNING feeds the INSERT, so nothing is recorded unless the resource moved. A job's end
        runs it for every job; the ORM's two statements cost more to build than to run.

        The times are `clock_timestamp()`, read after the UPDATE holds the resource's row lock, so a
        resource's history keeps the order its changes happened in (as the INSERT's own statement
        time does in the two-statement form)."""
        template, params = self._move_and_record_sql(obj, source, target, job=job, actor=actor, reason=reason)
        ctes = template.format(moved="moved", gate="", recorded="recorded")
        with connection.cursor() as cursor:
            cursor.execute(f'WITH {ctes} SELECT "id", "at" FROM recorded', params)  # noqa: S608
            row = cursor.fetchone()
        actor_id, subscription_id = self._who(obj, job=job, actor=actor)
        if row is None:
            return None
        entry = StateTransition(
            id=row[0],
            resource_type=self.resource_type,
            resource_id=str(obj.pk),
            subscription_id=subscription_id,
            from_state=source,
            to_state=target,
            job=job,
            actor_id=actor_id,
            reason=reason,
            at=row[1],
        )
        entry._state.adding, entry._state.db = False, connection.alias
        return entry

    def _move_and_record_sql(
        self, obj: models.Model, source: str, target: str, *, job: Job | None, actor: Any, reason: str
    ) -> tuple[str, list[Any]]:
        """The two CTEs of `_move_and_record`, as a template with `{moved}` and `{recorded}` (their
        names) and `{gate}` (a further condition of the UPDATE, or ""), and their parameters."""
        meta, history = type(obj)._meta, StateTransition._meta
        column = _column(meta, self.field)
        sets = f'"{column}" = %s'
        if self.updated_field:
            sets += f', "{_column(meta, self.updated_field)}" = clock_timestamp()'
        names = ("resource_type", "resource_id", "subscription", "from_state", "to_state", "job", "actor", "reason")
        columns = ", ".join(f'"{_column(history, name)}"' for name in names)
        # Names come from the models, values go as parameters; braces are the template's.
        template = (
            f'{{moved}} AS (UPDATE "{meta.db_table}" SET {sets} WHERE "{meta.pk.column}" = %s AND "{column}" = %s'  # noqa: S608
            f'{{gate}} RETURNING 1), {{recorded}} AS (INSERT INTO "{history.db_table}" ({columns}, "at")'
            f' SELECT %s, %s, %s, %s, %s, %s, %s, %s, clock_timestamp() FROM {{moved}} RETURNING "id", "at")'
        )
        actor_id, subscription_id = self._who(obj, job=job, actor=actor)
        params = [
            target,
            meta.pk.get_db_prep_value(obj.pk, connection),
            source,
            *(self.resource_type, str(obj.pk), subscription_id, source, target),
            job.pk if job is not None else None,
            actor_id,
            reason,
        ]
        return template, params

    def _who(self, obj: models.Model, *, job: Job | None, actor: Any) -> tuple[Any, Any]:
        """The actor recorded (`actor`, else whoever started `job`) and the resource's subscription."""
        if getattr(actor, "is_authenticated", False):
            actor_id = actor.pk
        else:
            actor_id = job.created_by_id if job is not None else None
        subscription_id = getattr(obj, f"{self.subscription_field}_id") if self.subscription_field else None
        return actor_id, subscription_id

    def _record(
        self, obj: models.Model, source: str, target: str, *, job: Job | None, actor: Any, reason: str
    ) -> StateTransition:
        actor_id, subscription_id = self._who(obj, job=job, actor=actor)
        return StateTransition.objects.create(
            resource_type=self.resource_type,
            resource_id=str(obj.pk),
            subscription_id=subscription_id,
            from_state=source,
            to_state=target,
            job=job,
            actor_id=actor_id,
            reason=reason,
        )

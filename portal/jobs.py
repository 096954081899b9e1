"""The job framework: one way to run long work (provisioning) outside the web request.

Life of a job:

1. A service calls `job_create()` inside the transaction that changes the resource. The message is
   sent to the broker on commit (never for a rolled-back change).
2. A worker's task calls `job_execute()`, which *claims* the job with a compare-and-swap UPDATE on
   the `attempts` it read: a queued job whose retry time has come, or a running one whose heartbeat
   is stale (its worker died). The token of the run is that read + 1, taken from the swap itself,
   so two runs can never hold the same token; every later write of the run is conditional on it.
3. The handler registered for the job's kind runs its declared steps. Steps done by an earlier
   attempt are not repeated (a retry resumes at the failed step); every step is idempotent anyway
   (drivers are keyed by the resource id), so a re-run after a crash picks up what exists.
   A heartbeat thread keeps the claim fresh.
4. A transient failure (e.g. a driver's Unavailable) puts the job back in the queue with backoff,
   while attempts remain; anything else fails it. On success, failure or cancellation the handler's
   hooks set the resource's state in the same transaction that ends the job.

Time is always the database's (`Now()`): web servers, workers and beat may run on machines whose
clocks disagree. Each kind has a deadline from its first start; past it the job fails "timed out".

`job_sweep()` (run by beat) re-sends queued jobs whose message may be lost, re-queues running jobs
whose worker died, fails jobs past their deadline or out of attempts, and wipes expired secrets.

On PostgreSQL a run's own writes to its job row (the claim, step starts and ends, progress, and the
transaction that ends the job with its state hooks) are single hand-written statements committed
*asynchronously* (`SET LOCAL synchronous_commit TO OFF`): the commit returns before the WAL is on
disk, which on a busy server is most of a short job's time. What that risks, and why it is safe:

- Only a PostgreSQL crash loses such a commit (never a worker crash or a client disconnect), and it
  loses the last few hundred milliseconds of asynchronous commits: a suffix of the WAL. The database
  comes back as it was at one earlier instant, consistent, as if every run had stopped right there.
- Every session is cut by the crash, so no run that wrote before it can write after it (Django
  doesn't reconnect within a task): a token that comes back with a lost claim is never held twice.
- What the database forgot is what a worker dying at that instant leaves, which the framework
  already recovers: a lost claim leaves the job queued with its old send time, so the sweeper sends
  it again; a lost step or end leaves it running with a heartbeat that goes stale, so the sweeper
  re-queues it; the next run resumes at the first step not recorded as done, and steps are
  idempotent (drivers key the fabric's objects by the portal's ids), so work the fabric did after
  the lost commit is found, not repeated. A lost end takes its state hooks with it (one transaction).
- Writes a person made (creating, cancelling, retrying a job) and the sweeper's stay synchronous.

A run sends few round trips: the claim reads the job's target in the same one; a resource write
that a re-run would repeat (the fabric's id) rides on the run's next job-row write
(`JobContext.fenced_update_later`); and the end is one statement when the hooks hand their writes
over (`job_end_part`). The statements are prepared once per worker session (`_send`): planning
them on every job took PostgreSQL longer than running them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, TypeVar, cast

from django.conf import settings
from django.db import (
    InterfaceError,
    OperationalError,
    ProgrammingError,
    close_old_connections,
    connection,
    models,
    transaction,
)
from django.db.models import BooleanField, F, Q
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Now
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from portal import audit, crypto
from portal.audit import audited
from portal.exceptions import Conflict, NotAllowed, ServiceError
from portal.models import ACTIVE_JOB_STATES, FINISHED_JOB_STATES, Job, JobState
from portal.prepared import PreparedGet

logger = logging.getLogger(__name__)


class JobLost(Exception):
    """This run no longer owns the job (a newer attempt claimed it, or it ended): stop quietly."""


class JobTimedOut(Exception):
    """The job passed its deadline; raised at a step boundary of the run that notices it."""


class JobFailure(Exception):
    """A failure whose message is meant for the user (e.g. a fabric refusal). Drivers' errors are
    translated into it by handlers, or raise ServiceError/DriverError which are treated the same."""


@dataclass(frozen=True)
class Step:
    """One declared step of a job kind, run by calling the handler's method `method(ctx, target)`.

    `once`: a step done by an earlier attempt is not run again (its effect lives on the resource,
    e.g. the VM's fabric id); steps whose output a later step needs in memory say `once=False`.
    `best_effort`: bookkeeping (e.g. reading a cloud's usage back) whose failure is logged and
    left to the next sync instead of failing work that was done.
    `coalesce_by`: for best-effort bookkeeping that many jobs would repeat (a cloud's usage after
    each of a thousand creates), the name of a handler method `(ctx, target) -> key`: this process
    runs the step at once if it hasn't for that key within CANOPY_JOB_COALESCE_SECONDS, and else
    once for all the jobs that asked meanwhile, at the end of that interval (see `_Coalescer`).
    """

    name: str
    method: str
    done_percent: int
    once: bool = True
    best_effort: bool = False
    coalesce_by: str | None = None


class JobHandler:
    """Base class of a job kind. Subclasses set `kind`, `label` and `steps`, implement `load` and
    one method per step.

    The hooks set the resource's state; they run inside the transaction that ends the job (or that
    puts a failed job back in the queue, for `prepare_retry`), so resource state always follows it.
    When a run ends its own job, the hooks are first run collecting what they hand over
    (`job_end_part`, e.g. `StateMachine.transition_if_unchanged`), to send it within the statement
    that ends the job; a hook that runs a statement of its own is run again inside a transaction
    (see `_end_in_one_statement`), so hooks should do nothing but database writes.
    """

    kind: ClassVar[str]
    label: ClassVar[str] = ""
    steps: ClassVar[tuple[Step, ...]] = ()
    # Seconds from the first start after which the job fails as timed out; None: the default
    # (CANOPY_JOB_DEADLINE_SECONDS). CANOPY_JOB_DEADLINES overrides either per kind.
    deadline_seconds: ClassVar[float | None] = None
    # The target as load() would read it, by its primary key (the job's target_id): on PostgreSQL
    # the claim reads it in its own round trip, and load() runs only if it didn't.
    target_query: ClassVar[PreparedGet[Any] | None] = None

    def load(self, ctx: JobContext) -> Any:
        """The job's target, loaded once per run and passed to every step method."""
        return None

    def run(self, ctx: JobContext) -> None:
        """Run the declared steps in order, skipping those an earlier attempt finished."""
        target = ctx.target if ctx.target is not None else self.load(ctx)
        for step in self.steps:
            key = getattr(self, step.coalesce_by)(ctx, target) if step.coalesce_by else None
            ctx.run_step(step, functools.partial(getattr(self, step.method), ctx, target), coalesce_key=key)

    def on_succeeded(self, job: Job) -> None:
        """Set the resource's final state. Default: nothing."""

    def on_failed(self, job: Job) -> None:
        """Set the resource's state after a failure (one the user can act on). Default: nothing."""

    def on_cancelled(self, job: Job) -> None:
        """Set the resource's state after staff cancelled the job. Default: as after a failure."""
        self.on_failed(job)

    def prepare_retry(self, job: Job, *, by: Any) -> None:
        """Check a failed job may run again and put its resource back in its busy state; raise
        NotAllowed (ServiceError) if not. Default: retry is refused."""
        raise NotAllowed(f"{self.label or self.kind} can't be retried.")

    def deadline(self) -> float:
        default = self.deadline_seconds or settings.CANOPY_JOB_DEADLINE_SECONDS
        return float(settings.CANOPY_JOB_DEADLINES.get(self.kind, default))


_handlers: dict[str, JobHandler] = {}
H = TypeVar("H", bound=type[JobHandler])

# Errors whose text is safe and useful to show the user as the job's error.
_user_errors: list[type[BaseException]] = [JobFailure, ServiceError]
# Errors that say "trying again later may succeed": retried with backoff while attempts remain.
_transient_errors: list[type[BaseException]] = []


def register(handler_class: H) -> H:
    """Class decorator: register a JobHandler for its `kind`."""
    handler = handler_class()
    if not handler.steps and type(handler).run is JobHandler.run:
        raise TypeError(f"{handler_class.__name__} declares no steps")
    _handlers[handler_class.kind] = handler
    _first_step_names.cache_clear()
    _target_queries.cache_clear()
    return handler_class


def register_user_error(exc_class: type[BaseException]) -> None:
    """Let an app declare an exception type whose message is shown to users (e.g. DriverError)."""
    if exc_class not in _user_errors:
        _user_errors.append(exc_class)


def register_transient_error(exc_class: type[BaseException]) -> None:
    """Let an app declare an exception type that is retried with backoff (e.g. a driver's Unavailable)."""
    register_user_error(exc_class)
    if exc_class not in _transient_errors:
        _transient_errors.append(exc_class)


def get_handler(kind: str) -> JobHandler:
    return _handlers[kind]


def job_label(job: Job) -> str:
    handler = _handlers.get(job.kind)
    label = handler.label if handler and handler.label else job.kind
    return f"{label} {job.target_name}".strip()


def _ago(seconds: float) -> Any:
    """The database's clock minus `seconds`, as an expression (never the worker's clock)."""
    return Now() - timedelta(seconds=seconds)


def _later(seconds: float) -> Any:
    return Now() + timedelta(seconds=seconds)


def _iso_now() -> str:
    """Display timestamps inside the step log (informational only; no decision is based on them)."""
    return timezone.now().isoformat()


# --- creating and sending --------------------------------------------------------------------------


def job_create(
    *,
    kind: str,
    target: models.Model,
    subscription: Any = None,
    created_by: Any = None,
    params: dict[str, Any] | None = None,
    secret: str | None = None,
    target_name: str | None = None,
    parent: Job | None = None,
) -> Job:
    """Create a job for `target` and send it when the surrounding transaction commits.

    Call it inside the transaction that changes the resource, so both exist or neither does.
    `secret` is stored encrypted on the job row (never in the broker); it is wiped when the job
    succeeds, or when a failed job can no longer be retried (CANOPY_JOB_SECRET_RETENTION_SECONDS).
    `parent`: the job group (portal.job_groups) this job is one resource's share of.
    """
    if kind not in _handlers:
        raise LookupError(f"no job handler registered for {kind!r}")
    job = Job.objects.create(
        kind=kind,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_name=target_name if target_name is not None else str(target),
        subscription=subscription,
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
        params=params or {},
        parent=parent,
        secret=crypto.encrypt(secret) if secret else "",
        max_attempts=settings.CANOPY_JOB_MAX_ATTEMPTS,
        # Recorded as sent with the insert, saving an UPDATE per job; undone if the send fails.
        dispatched_at=Now(),
        dispatch_count=1,
    )
    job_id = str(job.pk)
    transaction.on_commit(lambda: job_dispatch(job_id))
    return job


def job_dispatch(job_id: str, *, countdown: float | None = None) -> None:
    """Send the job's message. Whoever sends records it on the job row beforehand (job_create with
    the insert, the sweeper, a transient retry), so a successful send costs no statement. A broker
    error is logged, not raised, and the row is marked unsent: the sweeper sends it again."""
    from portal.tasks import run_job

    try:
        if countdown:
            run_job.apply_async((str(job_id),), countdown=countdown)
        else:
            run_job.delay(str(job_id))
    except Exception:
        logger.exception("could not send job %s to the broker; the sweeper will retry", job_id)
        Job.objects.filter(pk=job_id, state=JobState.QUEUED).update(dispatched_at=None, dispatch_count=0)


# --- claiming and running ---------------------------------------------------------------------------


def _claimable() -> Q:
    queued = Q(state=JobState.QUEUED) & (Q(retry_at__isnull=True) | Q(retry_at__lte=Now()))
    orphaned = Q(state=JobState.RUNNING, heartbeat__lt=_ago(settings.CANOPY_JOB_STALE_SECONDS))
    return queued | orphaned


def _load_for_claim(job_id: str) -> Job | None:
    return Job.objects.filter(pk=job_id).first()


# --- hand-written SQL for a run's writes to its job row (PostgreSQL) ----------------------------------
# The ORM spends more time building these statements than PostgreSQL spends running them; each is one
# statement whose text depends only on the fields written. Other databases (the embedded SQLite) run
# the same writes through the ORM.

_ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF; "


@functools.cache
def _hand_written_sql() -> bool:
    """Once per process: asked a dozen times per job, and the answer never changes."""
    # Several statements in one execute() need client-side binding (Django's default for psycopg 3).
    return connection.vendor == "postgresql" and not connection.settings_dict["OPTIONS"].get("server_side_binding")


# A statement and its parameters, as a run hands it on to be sent with its next write.
Statement = tuple[str, Sequence[Any]]


def _execute(sql: str, params: Any, *, async_commit: bool, before: Sequence[Statement] = ()) -> Any:
    """Run one statement, after the `before` ones, in one round trip; returns the cursor at the
    last statement's result. With `async_commit`, commit them asynchronously (see the module's
    docstring): in autocommit mode the SET LOCAL and the statements form one implicit transaction."""
    return _send([*before, (sql, params)], async_commit=async_commit).result(len(before))


class _Sent:
    """The results of statements sent in one round trip: `result(i)` moves the cursor to the i-th
    statement's (past the SET LOCAL and any PREPARE), forward only."""

    def __init__(self, cursor: Any, positions: list[int]) -> None:
        self.cursor, self._positions, self._at = cursor, positions, 0

    def result(self, i: int) -> Any:
        while self._at < self._positions[i]:
            self.cursor.nextset()
            self._at += 1
        return self.cursor


def _send(statements: Sequence[Statement], *, async_commit: bool, retry: bool = True) -> _Sent:
    """Send the statements in one execute (client-side binding, so one round trip), each as a
    prepared statement of this session (`_SessionStatements`), behind the SET LOCAL if asked."""
    cursor = connection.cursor()
    session = _SessionStatements.of(connection)
    texts: list[str] = []
    values: list[Any] = []
    positions: list[int] = []
    prepared: list[str] = []
    if async_commit:
        texts.append(_ASYNC_COMMIT.rstrip("; "))
    if session.unsure:  # an earlier batch failed: which of its PREPAREs ran is unknown
        texts.append("DEALLOCATE ALL")
        session.names.clear()
    for sql, params in statements:
        named = _prepared_form(sql)
        if named is None or (named[0] not in session.names and len(session.names) >= _MAX_PREPARED):
            texts.append(sql)
        else:
            name, numbered, count = named
            assert count == len(params), "one parameter per placeholder"
            if name not in session.names and name not in prepared:
                texts.append(f"PREPARE {name} AS {numbered}")
                prepared.append(name)
            texts.append(f"EXECUTE {name}({', '.join(['%s'] * count)})" if count else f"EXECUTE {name}")
        positions.append(len(texts) - 1)
        values.extend(params)
    session.unsure = True
    try:
        cursor.execute(";\n".join(texts), values)
    except ProgrammingError as exc:
        # The session lost statements we prepared (a DEALLOCATE or DISCARD we didn't send): outside
        # a transaction the failed batch wrote nothing, so send it again, preparing everything.
        lost = getattr(exc.__cause__, "sqlstate", None) == "26000"  # invalid_sql_statement_name
        if not lost or connection.in_atomic_block or not retry:
            raise
        return _send(statements, async_commit=async_commit, retry=False)
    session.unsure = False
    session.names.update(prepared)
    return _Sent(cursor, positions)


# Statements prepared per session at most (the texts a run sends are a few dozen at most).
_MAX_PREPARED = 200
_PLACEHOLDER = re.compile(r"%%|%s")


@functools.lru_cache(maxsize=_MAX_PREPARED)
def _prepared_form(sql: str) -> tuple[str, str, int] | None:
    """The name and the PREPARE text ($1, $2... for %s) of a statement a run sends, by its text.

    A run sends the same few statement texts with new values each time: PostgreSQL parses and
    plans each text once per session (then reuses a generic plan), instead of on every job, where
    planning took longer than running them."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group() == "%%":
            return "%%"  # still goes through the client-side binding of the whole batch
        count += 1
        return f"${count}"

    numbered = _PLACEHOLDER.sub(number, sql)
    return f"canopy_{hashlib.sha1(numbered.encode(), usedforsecurity=False).hexdigest()[:24]}", numbered, count


class _SessionStatements:
    """The statements prepared in the current session of a connection (a new session, after a
    reconnect, has none). `unsure` while a batch is in flight: if it failed, some of its PREPAREs
    may have run, so the next batch starts with DEALLOCATE ALL."""

    def __init__(self, raw: Any) -> None:
        self.raw, self.names, self.unsure = raw, set[str](), False

    @classmethod
    def of(cls, conn: Any) -> _SessionStatements:
        state = getattr(conn, "_canopy_statements", None)
        if state is None or state.raw is not conn.connection:
            state = cls(conn.connection)
            conn._canopy_statements = state
        return cast(_SessionStatements, state)


def _job_update(
    job_id: Any,
    fields: dict[str, Any],
    *,
    attempt: int | None = None,
    running: bool = False,
    before_deadline: bool = False,
    unfinished: bool = False,
    async_commit: bool = False,
    before: Sequence[Statement] = (),
) -> int:
    """UPDATE one job row, fenced by the given conditions; returns the rows updated (0 or 1).
    `fields` are plain values or Now() (the database's time). `before`: a run's statements sent in
    the same round trip ahead of it (hand-written SQL only: elsewhere a run has none)."""
    if not _hand_written_sql():
        assert not before, "statements are handed on only with hand-written SQL"
        rows = Job.objects.filter(pk=job_id)
        if attempt is not None:
            rows = rows.filter(attempts=attempt)
        if running:
            rows = rows.filter(state=JobState.RUNNING)
        if before_deadline:
            rows = rows.filter(Q(deadline_at__isnull=True) | Q(deadline_at__gt=Now()))
        if unfinished:
            rows = rows.exclude(state__in=FINISHED_JOB_STATES)
        return rows.update(**fields)
    sql, params = _job_update_sql(
        job_id, fields, attempt=attempt, running=running, before_deadline=before_deadline, unfinished=unfinished
    )
    cursor = _execute(sql, params, async_commit=async_commit, before=before)
    return int(cursor.rowcount)


def _job_update_sql(
    job_id: Any, fields: dict[str, Any], *, attempt: int | None, running: bool, before_deadline: bool, unfinished: bool
) -> tuple[str, list[Any]]:
    """The hand-written UPDATE of `_job_update` (PostgreSQL)."""
    sets, params = [], []
    for name, value in fields.items():
        column = _JOB_FIELDS[name]
        if isinstance(value, Now):
            sets.append(f'"{column.column}" = STATEMENT_TIMESTAMP()')
        else:
            sets.append(f'"{column.column}" = %s')
            params.append(column.get_db_prep_save(value, connection))
    where = ["id = %s"]
    params.append(Job._meta.pk.to_python(job_id))
    if attempt is not None:
        where.append("attempts = %s")
        params.append(attempt)
    if running:
        where.append("state = 'running'")
    if before_deadline:
        where.append("(deadline_at IS NULL OR deadline_at > STATEMENT_TIMESTAMP())")
    if unfinished:
        where.append("state NOT IN ('succeeded', 'failed', 'cancelled')")
    # Names come from the model, values go as parameters.
    return f"UPDATE {Job._meta.db_table} SET {', '.join(sets)} WHERE {' AND '.join(where)}", params  # noqa: S608


_JOB_FIELDS = {f.name: f for f in Job._meta.concrete_fields}
_JOB_COLUMNS = [f.column for f in Job._meta.concrete_fields]
_JOB_NAMES = [f.attname for f in Job._meta.concrete_fields]
assert set(FINISHED_JOB_STATES) == {"succeeded", "failed", "cancelled"}  # spelled out in _job_update

# Names come from the model, values go as parameters.
_CLAIM_SQL = f"""
UPDATE {Job._meta.db_table} AS j SET
    state = 'running', attempts = j.attempts + 1, heartbeat = STATEMENT_TIMESTAMP(),
    started_at = COALESCE(j.started_at, STATEMENT_TIMESTAMP()),
    deadline_at = COALESCE(j.deadline_at, STATEMENT_TIMESTAMP()
        + make_interval(secs => COALESCE((c.deadlines ->> j.kind)::float8, %s))),
    retry_at = NULL, error = '',
    steps = CASE WHEN j.attempts = 0 AND c.firsts ? j.kind
                 THEN j.steps || jsonb_build_array(c.firsts -> j.kind) ELSE j.steps END,
    step = CASE WHEN j.attempts = 0 AND c.firsts ? j.kind THEN c.firsts -> j.kind ->> 'name' ELSE j.step END,
    percent = CASE WHEN j.attempts = 0 AND c.firsts ? j.kind THEN GREATEST(j.percent, 5) ELSE j.percent END
FROM (SELECT %s::jsonb AS firsts, %s::jsonb AS deadlines) AS c
WHERE j.id = %s AND j.attempts < j.max_attempts AND (
    (j.state = 'queued' AND (j.retry_at IS NULL OR j.retry_at <= STATEMENT_TIMESTAMP()))
    OR (j.state = 'running' AND j.heartbeat < STATEMENT_TIMESTAMP() - make_interval(secs => %s)))
RETURNING {", ".join(f"j.{c}" for c in _JOB_COLUMNS)}"""  # noqa: S608


@functools.cache
def _job_converters() -> list[tuple[int, list[Any], Any]]:
    """What the ORM does to a job row's values as it reads them (e.g. JSON text to Python)."""
    converters = []
    for i, f in enumerate(Job._meta.concrete_fields):
        col = f.get_col(Job._meta.db_table)
        funcs = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if funcs:
            converters.append((i, funcs, col))
    return converters


def _first_steps(started: str) -> dict[str, dict[str, Any]]:
    """The log entry a first attempt starts its first step with, per kind that runs declared steps."""
    return {
        kind: {"name": name, "state": "running", "attempt": 1, "started": started}
        for kind, name in _first_step_names().items()
    }


@functools.cache
def _first_step_names() -> dict[str, str]:
    """By kind (cleared when a kind registers)."""
    return {kind: h.steps[0].name for kind, h in _handlers.items() if _starts_with_claim(h)}


def _starts_with_claim(handler: JobHandler | None) -> bool:
    return (
        handler is not None
        and bool(handler.steps)
        and type(handler).run is JobHandler.run
        and not handler.steps[0].coalesce_by
        and _hand_written_sql()
    )


def _claim_hand_written(job_id: str) -> tuple[Job | None, Any]:
    """The claim as one UPDATE ... RETURNING: the swap reads and bumps `attempts` under the row's
    lock, and a concurrent claim re-checks the claimable condition on the row this one wrote (so it
    finds the job running with a fresh heartbeat and matches nothing). A first attempt also starts
    its first declared step in the same statement (what the step's own start would write next).

    In the same round trip, after the UPDATE and in its transaction, the target of a kind with a
    `target_query` is read (one SELECT per query, by the job's target_id and kind): returns the job
    and that target (None if none was read)."""
    key = Job._meta.pk.to_python(job_id)
    firsts = _first_steps(_iso_now())
    deadlines = {kind: h.deadline() for kind, h in _handlers.items()}
    statements: list[Statement] = [
        (
            _CLAIM_SQL,
            [
                float(settings.CANOPY_JOB_DEADLINE_SECONDS),
                _JOB_FIELDS["params"].get_db_prep_save(firsts, connection),
                _JOB_FIELDS["params"].get_db_prep_save(deadlines, connection),
                key,
                float(settings.CANOPY_JOB_STALE_SECONDS),
            ],
        )
    ]
    reads: dict[str, int] = {}  # kind -> which SELECT reads its target
    for n, (query, kinds) in enumerate(_target_queries().items()):
        pk = query.model._meta.pk
        assert pk is not None
        target_id = (
            f"(SELECT CAST(target_id AS {pk.db_type(connection)}) FROM {Job._meta.db_table}"  # noqa: S608
            f" WHERE id = %s AND kind IN ({', '.join(['%s'] * len(kinds))}))"
        )
        statements.append(query.keyed_by(target_id, [key, *kinds]))
        reads.update(dict.fromkeys(kinds, n + 1))
    sent = _send(statements, async_commit=not connection.in_atomic_block)
    row = sent.result(0).fetchone()
    if row is None:
        return None, None
    values = list(row)
    for i, funcs, col in _job_converters():
        for func in funcs:
            values[i] = func(values[i], col, connection)
    job = Job.from_db(connection.alias, _JOB_NAMES, values)
    target = None
    if job.kind in reads:
        target_row = sent.result(reads[job.kind]).fetchone()
        handler = _handlers[job.kind]
        if target_row is not None and handler.target_query is not None:
            target = handler.target_query.from_row(target_row)
    return job, target


@functools.cache
def _target_queries() -> dict[PreparedGet[Any], list[str]]:
    """The registered kinds that declare a target_query, by query (cleared when a kind registers)."""
    queries: dict[PreparedGet[Any], list[str]] = {}
    for kind, handler in _handlers.items():
        if handler.target_query is not None:
            queries.setdefault(handler.target_query, []).append(kind)
    return queries


def _claim_reconnecting(job_id: str) -> tuple[Job | None, Any]:
    """_claim(), on a fresh connection if the reused one is broken (the database restarted since
    the last task): a worker's task doesn't ping its connection first (portal.celery)."""
    try:
        return _claim(job_id)
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise
        logger.info("job %s: the database connection was broken; claiming again on a new one", job_id)
        connection.close()
        return _claim(job_id)


def _claim(job_id: str) -> tuple[Job | None, Any]:
    """job_claim(), with the job's target when the claim read it too (PostgreSQL, `target_query`)."""
    if _hand_written_sql():
        return _claim_hand_written(job_id)
    return _claim_portable(job_id), None


def job_claim(job_id: str) -> Job | None:
    """Claim a job for this worker, or return None if it isn't ours to run.

    Compare-and-swap on the attempts read: the UPDATE matches only if no other claim happened since
    the read, the job is claimable (queued and due, or running with a stale heartbeat) and attempts
    remain. The returned job's `attempts` is this run's fencing token (read + 1), known from the
    swap itself: a worker that stalls anywhere in here can only lose the race, never share a token.
    (On PostgreSQL the read and the swap are one statement: `_claim_hand_written`.)
    """
    return _claim(job_id)[0]


def _claim_portable(job_id: str) -> Job | None:
    job = _load_for_claim(job_id)
    if job is None or job.state in FINISHED_JOB_STATES or job.attempts >= job.max_attempts:
        return None
    seen = job.attempts
    handler = _handlers.get(job.kind)
    deadline = handler.deadline() if handler else settings.CANOPY_JOB_DEADLINE_SECONDS
    updated = (
        Job.objects.filter(pk=job_id, attempts=seen)
        .filter(_claimable(), attempts__lt=F("max_attempts"))
        .update(
            state=JobState.RUNNING,
            attempts=seen + 1,
            heartbeat=Now(),
            started_at=Coalesce(F("started_at"), Now()),
            deadline_at=Coalesce(F("deadline_at"), _later(deadline)),
            retry_at=None,
            error="",
        )
    )
    if not updated:
        return None
    job.attempts, job.state, job.error, job.retry_at = seen + 1, JobState.RUNNING, "", None
    return job


class _ProcessHeartbeat:
    """One thread per process refreshes the heartbeat of every run the process holds, in one UPDATE
    per interval on a connection it keeps while runs go on (a thread and a connection per job made
    short jobs pay for both). Each refresh is fenced like every write of a run: job id, attempt,
    state running, so a lost or finished run is never refreshed.
    """

    def __init__(self, *, autostart: bool = True) -> None:
        self.autostart = autostart
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        # A forked child (a prefork pool process) inherits neither the thread nor a safe lock.
        self._lock = threading.Lock()
        self._runs: dict[str, int] = {}  # job id -> attempt
        self._idle = threading.Event()
        self._thread: threading.Thread | None = None

    def track(self, job_id: str, attempt: int) -> None:
        with self._lock:
            self._runs[job_id] = attempt
            if self.autostart and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._loop, daemon=True, name="job-heartbeat")
                self._thread.start()

    def untrack(self, job_id: str, attempt: int) -> None:
        with self._lock:
            if self._runs.get(job_id) == attempt:
                del self._runs[job_id]
        # The thread isn't woken: it drops its connection at its next beat if no run is left (waking
        # it as each short job ended cost every job a thread switch).

    def beat(self) -> int:
        """Refresh the heartbeat of every tracked run now; returns how many jobs were refreshed."""
        with self._lock:
            runs = list(self._runs.items())
        if not runs:
            return 0
        fence = Q()
        for job_id, attempt in runs:
            fence |= Q(pk=job_id, attempts=attempt)
        return Job.objects.filter(fence, state=JobState.RUNNING).update(heartbeat=Now())

    def _loop(self) -> None:
        next_beat = time.monotonic() + settings.CANOPY_JOB_HEARTBEAT_SECONDS
        while True:
            self._idle.wait(max(0.0, next_beat - time.monotonic()))
            self._idle.clear()
            with self._lock:
                idle = not self._runs
            if idle:
                # Nothing to keep fresh: hold no connection (the next run that outlives a beat opens one).
                connection.close()
            if time.monotonic() < next_beat:
                continue
            next_beat = time.monotonic() + settings.CANOPY_JOB_HEARTBEAT_SECONDS
            if idle:
                continue
            try:
                close_old_connections()  # CONN_MAX_AGE and broken connections, as for a task's own
                self.beat()
            except Exception:  # a lost beat is survivable; the next one may get through
                logger.warning("job heartbeat failed", exc_info=True)


_heartbeats = _ProcessHeartbeat()


class _Coalescer:
    """Runs coalesced bookkeeping steps (`Step.coalesce_by`) of this process: at most one per key per
    CANOPY_JOB_COALESCE_SECONDS. A step asked for when none ran for its key within that interval
    runs at once, in the job (as any step); asked for sooner, it is left here and one run of it, on
    this process's own thread at the end of the interval, serves every job that asked meanwhile.
    That run starts after each of them asked, so it sees what they did (a cloud's usage counts
    every VM they created). Its failure is logged and left to the next synchronization, as a
    best-effort step's is; a worker that dies with runs pending leaves them to it too, and one
    that stops cleanly runs them first (`job_flush_coalesced`, on Celery's shutdown signals).
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[Any, float] = {}  # key -> monotonic time its last run started
        self._pending: dict[Any, tuple[float, Callable[[], Any]]] = {}  # key -> (due, newest body)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def run_now(self, key: Any, body: Callable[[], Any]) -> bool:
        """True: the caller runs `body` now (nothing ran for `key` lately). False: it is left here."""
        window = float(settings.CANOPY_JOB_COALESCE_SECONDS)
        now = time.monotonic()
        with self._lock:
            if key in self._pending:
                self._pending[key] = (self._pending[key][0], body)
                return False
            last = self._last.get(key)
            if window <= 0 or last is None or now - last >= window:
                self._last[key] = now
                return True
            self._pending[key] = (last + window, body)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, daemon=True, name="job-coalesced")
                self._thread.start()
        self._wake.set()
        return False

    def _due(self, *, all_: bool) -> list[Callable[[], Any]]:
        now = time.monotonic()
        with self._lock:
            keys = [k for k, (due, _) in self._pending.items() if all_ or due <= now]
            for key in keys:
                self._last[key] = now
            return [self._pending.pop(key)[1] for key in keys]

    def flush(self, *, all_: bool = True) -> int:
        """Run the pending steps (all, or those due); returns how many ran."""
        bodies = self._due(all_=all_)
        for body in bodies:
            try:
                body()
            except Exception:
                logger.warning("coalesced bookkeeping step failed; left to the next sync", exc_info=True)
        return len(bodies)

    def _loop(self) -> None:
        while True:
            with self._lock:
                next_due = min((due for due, _ in self._pending.values()), default=None)
            if next_due is None:
                # Nothing pending: keep the connection through a burst's pauses, not for ever.
                if not self._wake.wait(timeout=10 * float(settings.CANOPY_JOB_COALESCE_SECONDS)):
                    connection.close()
                    self._wake.wait()
            else:
                self._wake.wait(max(0.0, next_due - time.monotonic()))
            self._wake.clear()
            close_old_connections()  # CONN_MAX_AGE and broken connections, as for a task's own
            self.flush(all_=False)


_coalescer = _Coalescer()


def job_flush_coalesced() -> int:
    """Run this process's pending coalesced bookkeeping now (a worker about to stop; tests)."""
    return _coalescer.flush()


class _Heartbeat:
    """Keeps one run's claim fresh from start() to stop(), through the process's heartbeat thread."""

    def __init__(self, job_id: str, attempt: int) -> None:
        self.job_id, self.attempt = job_id, attempt

    def start(self) -> None:
        _heartbeats.track(self.job_id, self.attempt)

    def stop(self) -> None:
        _heartbeats.untrack(self.job_id, self.attempt)


@dataclass
class JobContext:
    """What a handler sees of its job: params, secret, progress and steps, fenced by `attempt`."""

    job: Job
    attempt: int
    # Scratch space of this run, for what one step hands the next (e.g. what the fabric reported).
    data: dict[str, Any] = field(default_factory=dict)
    # A finished step's log entry and progress, written with the run's next write (the next step's
    # start, or the end of the job) instead of a statement of its own. Lost only if the worker dies
    # right there, and then the step runs again, which steps are built to allow.
    pending: dict[str, Any] = field(default_factory=dict)
    # The first step's log entry when the claim already started it (a first attempt, on PostgreSQL).
    prestarted: dict[str, Any] | None = None
    # The job's target when the claim read it (JobHandler.target_query); else load() reads it.
    target: Any = None
    # Fenced resource writes (`fenced_update_later`) sent with the run's next write, ahead of it.
    deferred: list[Statement] = field(default_factory=list)

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    def secret(self) -> str | None:
        return crypto.decrypt(self.job.secret) if self.job.secret else None

    def _write(self, **fields: Any) -> None:
        """A fenced write: only while this run owns the running job and its deadline hasn't passed."""
        fields = {**self.pending, **fields}
        updated = _job_update(
            self.job.pk,
            {"heartbeat": Now(), **fields},
            attempt=self.attempt,
            running=True,
            before_deadline=True,
            async_commit=not connection.in_atomic_block,  # never a handler's own transaction
            before=self.take_deferred(),  # each fenced on its own, so sent whatever this one finds
        )
        if not updated:
            if Job.objects.filter(pk=self.job.pk, attempts=self.attempt, state=JobState.RUNNING).exists():
                raise JobTimedOut(str(self.job.pk))
            raise JobLost(str(self.job.pk))
        self.pending = {}
        for name, value in fields.items():
            setattr(self.job, name, value)

    def progress(self, percent: int, message: str | None = None) -> None:
        fields: dict[str, Any] = {"percent": max(0, min(100, int(percent)))}
        if message is not None:
            fields["step"] = message
        self._write(**fields)

    def done_before(self, name: str) -> bool:
        """True if an earlier attempt of this job finished the step `name`."""
        return any(s.get("name") == name and s.get("state") == "done" for s in self.job.steps)

    @contextmanager
    def step(self, name: str, *, done_percent: int) -> Iterator[None]:
        """Record a named step in the job's log; on exit, progress jumps to `done_percent`.

        The step's start is a fenced write, so a cancelled, timed-out or superseded run stops here,
        at a step boundary, before doing anything more.
        """
        steps = list(self.job.steps)
        prestarted, self.prestarted = self.prestarted, None
        if prestarted is not None and prestarted["name"] == name and steps and steps[-1] == prestarted:
            entry = steps[-1] = dict(prestarted)  # the claim wrote this start (and was the fence)
        else:
            entry = {"name": name, "state": "running", "attempt": self.attempt, "started": _iso_now()}
            steps.append(entry)
            # Move the bar as soon as work starts, so a long first step doesn't look stuck at 0%.
            self._write(steps=steps, step=name, percent=max(self.job.percent, 5))
        try:
            yield
        except (JobLost, JobTimedOut):
            raise
        except BaseException as exc:
            entry.update(state="failed", ended=_iso_now(), message=_user_message(exc))
            with contextlib.suppress(JobLost, JobTimedOut):
                self._write(steps=steps)
            raise
        entry.update(state="done", ended=_iso_now())
        self.job.steps, self.job.percent = steps, max(self.job.percent, done_percent)
        self.pending = {"steps": steps, "percent": self.job.percent}

    def run_step(self, step: Step, body: Callable[[], Any], *, coalesce_key: Any = None) -> None:
        """Run one declared step: skipped if an earlier attempt did it; bookkeeping failures logged;
        a coalesced step (`Step.coalesce_by`) handed to this process's `_Coalescer` when it ran lately."""
        if step.once and self.done_before(step.name):
            return
        if step.coalesce_by and not _coalescer.run_now((step.method, coalesce_key), body):
            window = settings.CANOPY_JOB_COALESCE_SECONDS
            steps = [
                *self.job.steps,
                {
                    "name": step.name,
                    "state": "deferred",
                    "attempt": self.attempt,
                    "started": _iso_now(),
                    "message": f"Done within {window:g} s for this and other jobs (or left to the next "
                    "synchronization).",
                },
            ]
            self.job.steps, self.job.percent = steps, max(self.job.percent, step.done_percent)
            self.pending = {"steps": steps, "percent": self.job.percent}
            return
        try:
            with self.step(step.name, done_percent=step.done_percent):
                body()
        except (JobLost, JobTimedOut):
            raise
        except Exception as exc:
            if not step.best_effort:
                raise
            logger.warning(
                "job %s: bookkeeping step %r failed; left to the next sync", self.job.pk, step.name, exc_info=True
            )
            self._note_last_step(f"{_user_message(exc)} (left to the next synchronization)", state="skipped")

    def fail_prestarted(self, exc: BaseException) -> None:
        """The run failed before entering the step its claim started (e.g. loading its target):
        log that step as failed with the job's end rather than leave it running."""
        prestarted, self.prestarted = self.prestarted, None
        steps = list(self.job.steps)
        if prestarted is not None and steps and steps[-1] == prestarted:
            steps[-1] = {**prestarted, "state": "failed", "ended": _iso_now(), "message": _user_message(exc)}
            self.job.steps = steps
            self.pending = {**self.pending, "steps": steps}

    def _note_last_step(self, message: str, *, state: str) -> None:
        steps = list(self.job.steps)
        if steps:
            steps[-1] = {**steps[-1], "state": state, "message": message, "ended": _iso_now()}
            self._write(steps=steps)

    def fenced_update(self, queryset: models.QuerySet[Any], **fields: Any) -> int:
        """Update `queryset` in one statement only while this run owns the job; raise JobLost if not.

        The fence is read when the statement starts, so a claim committing while it runs may slip
        past: use it for values any run would write the same way (e.g. the fabric's id for the
        portal's resource, which drivers key by that resource), and `guarded()` for anything else.

        Outside a transaction it commits asynchronously, as the run's job row writes do: such a
        value is one any later run writes again (its step re-runs and the driver finds what exists),
        so a PostgreSQL crash that forgets it is recovered like theirs (see the module's docstring).
        """
        if _hand_written_sql() and not connection.in_atomic_block:
            # QuerySet.update()'s statement, sent behind the SET LOCAL (and after any deferred one).
            sql, params = self._fenced_update_sql(queryset, fields)
            updated = int(_execute(sql, params, async_commit=True, before=self.take_deferred()).rowcount)
        else:
            self._send_deferred()
            updated = queryset.filter(self._fence()).update(**fields)
        if (
            not updated
            and not Job.objects.filter(pk=self.job.pk, attempts=self.attempt, state=JobState.RUNNING).exists()
        ):
            raise JobLost(str(self.job.pk))
        return updated

    def fenced_update_later(self, queryset: models.QuerySet[Any], **fields: Any) -> None:
        """`fenced_update`, sent with the run's next write to its job row (the next step's start,
        progress, or the end of the job) instead of in a round trip of its own.

        Only for what the step that writes it would find and write again if it ran again: the step's
        "done" entry rides on that same write (after this statement, in its transaction), so if the
        write is lost (the worker or PostgreSQL died first) the step isn't recorded as done and runs
        again. E.g. the fabric's id for a VM the driver built: a re-run's create finds that VM by the
        portal's id and returns it. The fence is this run's token, as for `fenced_update`; a run that
        lost its claim writes nothing and learns it from the job row write (JobLost). Elsewhere (the
        embedded SQLite, or inside a transaction of the handler's) it is `fenced_update`.
        """
        if not _hand_written_sql() or connection.in_atomic_block:
            self.fenced_update(queryset, **fields)
            return
        self.deferred.append(self._fenced_update_sql(queryset, fields))

    def take_deferred(self) -> list[Statement]:
        """The deferred resource writes, handed to whoever sends them next."""
        deferred, self.deferred = self.deferred, []
        return deferred

    def _send_deferred(self) -> None:
        if self.deferred:
            *before, (sql, params) = self.take_deferred()
            _execute(sql, params, async_commit=not connection.in_atomic_block, before=before)

    def _fence(self) -> RawSQL:
        # Spelled out: the ORM's Exists() costs more to build than the UPDATE takes to run.
        return RawSQL(  # noqa: S611 (values are parameters)
            f"EXISTS (SELECT 1 FROM {Job._meta.db_table} WHERE id = %s AND attempts = %s AND state = %s)",  # noqa: S608
            (Job._meta.pk.get_db_prep_value(self.job.pk, connection), self.attempt, JobState.RUNNING.value),
            output_field=BooleanField(),
        )

    def _fenced_update_sql(self, queryset: models.QuerySet[Any], fields: dict[str, Any]) -> Statement:
        """QuerySet.update()'s statement for the fenced update, as SQL and parameters."""
        query = cast(UpdateQuery, queryset.filter(self._fence()).query.chain(UpdateQuery))
        query.add_update_values(fields)
        assert not query.get_related_updates(), "a fenced update writes one table"
        sql, params = query.get_compiler(queryset.db).as_sql()
        return sql, params

    @contextmanager
    def guarded(self) -> Iterator[None]:
        """A transaction that holds this run's claim: resource writes inside it can't race a newer run."""
        with transaction.atomic():
            self._send_deferred()
            owned = (
                Job.objects.select_for_update()
                .filter(pk=self.job.pk, attempts=self.attempt, state=JobState.RUNNING)
                .exists()
            )
            if not owned:
                raise JobLost(str(self.job.pk))
            yield


def _user_message(exc: BaseException) -> str:
    if isinstance(exc, tuple(_user_errors)):
        return str(exc)
    return f"Internal error ({type(exc).__name__}); the provider has been notified."


def _finish(
    job: Job,
    attempt: int,
    state: str,
    error: str = "",
    *,
    pending: dict[str, Any] | None = None,
    before: Sequence[Statement] = (),
    by_run: bool = False,
) -> bool:
    """End the job (fenced by attempt) and let its handler set the resource state, atomically.
    `pending` are the run's own unwritten fields (its last step's log entry), `before` its deferred
    resource writes (`fenced_update_later`), sent first in the same transaction. `by_run`: the run
    ends its own job, a transaction committed asynchronously (see the module's docstring); a
    cancel or the sweeper commit as usual.

    A run's own end on PostgreSQL is one statement when it can be (`_end_in_one_statement`): one
    round trip instead of four (BEGIN, the job's UPDATE, the hooks' statements, COMMIT).

    The secret is wiped on success; a failed or cancelled job keeps it (encrypted) so it can be
    retried, until the sweeper wipes it after CANOPY_JOB_SECRET_RETENTION_SECONDS.
    """
    handler = _handlers.get(job.kind)
    fields: dict[str, Any] = {
        **(pending or {}),
        "state": state,
        "error": error,
        "finished_at": Now(),
        "step": "",
        "retry_at": None,
    }
    if state == JobState.SUCCEEDED:
        fields.update(secret="", percent=100)
    async_commit = by_run and not connection.in_atomic_block and _hand_written_sql()  # only its own transaction
    if async_commit and job.parent_id is None:
        ended = _end_in_one_statement(job, attempt, fields, handler, before)
        if ended is not None:
            return ended
    with transaction.atomic():
        updated = _job_update(
            job.pk, fields, attempt=attempt, unfinished=True, async_commit=async_commit, before=before
        )
        if not updated:
            return False
        _set_ended(job, fields)
        _run_hooks(handler, job)
        # --- job groups: a child's end moves its parent, in this same transaction (portal.job_groups)
        if job.parent_id is not None:
            from portal.job_groups import child_ended

            child_ended(job)
    return True


def _set_ended(job: Job, fields: dict[str, Any]) -> None:
    """The job in memory as its end writes it, for the hooks."""
    for name, value in fields.items():
        if name != "finished_at":
            setattr(job, name, value)
    job.finished_at = timezone.now()


def _run_hooks(handler: JobHandler | None, job: Job) -> None:
    if handler is None:
        return
    if job.state == JobState.SUCCEEDED:
        handler.on_succeeded(job)
    elif job.state == JobState.CANCELLED:
        handler.on_cancelled(job)
    else:
        handler.on_failed(job)


# --- a run's end in one statement (PostgreSQL) ----------------------------------------------------------


@dataclass(frozen=True)
class EndPart:
    """What a hook hands the framework to send inside the statement that ends its job, instead of
    running a statement of its own (`job_end_part`).

    `build(gate, prefix)` returns `(ctes, params, result)`: data-modifying CTEs (`name AS (...)`,
    comma-separated, each name starting with `prefix`) that must write nothing unless the SQL
    condition `gate` holds (it does when the job's end matched), their parameters in the order
    they appear, and a SQL expression over them whose value is passed to `on_result(value)` once
    the statement ran, if the job's end matched."""

    build: Callable[[str, str], tuple[str, list[Any], str]]
    on_result: Callable[[Any], None]


_end_parts: threading.local = threading.local()


def job_end_part(part: EndPart) -> bool:
    """From a job's hook: hand `part` to the framework, which sends it in the one statement that
    ends the job (and so in its transaction). False when the hooks run in a transaction of their
    own instead (the slow path, or no job's end at all): then the caller runs its own statement."""
    parts: list[EndPart] | None = getattr(_end_parts, "parts", None)
    if parts is None:
        return False
    parts.append(part)
    return True


class _HookNeedsTransaction(Exception):
    """A hook ran a statement of its own while its statements were being collected."""


def _end_in_one_statement(
    job: Job, attempt: int, fields: dict[str, Any], handler: JobHandler | None, before: Sequence[Statement]
) -> bool | None:
    """End the job in one round trip: `before` (the run's deferred resource writes, each fenced on
    its own), then one statement whose first CTE is the fenced UPDATE of the job row and whose other
    CTEs are the hooks' writes, each gated on that UPDATE having matched, so they take effect
    together or not at all. Sent behind SET LOCAL synchronous_commit TO OFF as one implicit
    transaction, like every write of the run.

    The hooks run first, collecting what they hand over (`job_end_part`, e.g. a state transition).
    A hook that runs any statement of its own is refused before that statement is sent; then this
    returns None, having written nothing, and `_finish` runs the hooks again in a transaction
    (so hooks should do nothing but database writes). Returns whether the job's end matched."""
    _set_ended(job, fields)
    parts: list[EndPart] = []
    refused: list[str] = []

    def refuse(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        refused.append(sql)
        raise _HookNeedsTransaction(sql)

    _end_parts.parts = parts
    try:
        with connection.execute_wrapper(refuse):
            _run_hooks(handler, job)
    except _HookNeedsTransaction:
        pass
    finally:
        _end_parts.parts = None
    if refused:  # even if the hook caught the refusal
        return None
    update, params = _job_update_sql(
        job.pk, fields, attempt=attempt, running=False, before_deadline=False, unfinished=True
    )
    ctes, results = [f"ended AS ({update} RETURNING 1)"], ["(SELECT count(*) FROM ended)"]
    for n, part in enumerate(parts):
        part_ctes, part_params, result = part.build("EXISTS (SELECT 1 FROM ended)", f"part{n}_")
        ctes.append(part_ctes)
        params += part_params
        results.append(result)
    sql = f"WITH {', '.join(ctes)} SELECT {', '.join(results)}"
    row = _execute(sql, params, async_commit=True, before=before).fetchone()
    if not row[0]:
        return False
    for part, value in zip(parts, row[1:], strict=True):
        part.on_result(value)
    return True


def _backoff(attempt: int) -> float:
    """Seconds before the next attempt after `attempt` failed transiently: 1x, 2x, 4x... the base."""
    base = settings.CANOPY_JOB_RETRY_BACKOFF_SECONDS
    return min(base * 2 ** max(0, attempt - 1), settings.CANOPY_JOB_RETRY_BACKOFF_MAX_SECONDS)


def _requeue_after_transient(
    job: Job, attempt: int, exc: BaseException, *, before: Sequence[Statement] = ()
) -> float | None:
    """Put a transiently failed run back in the queue with backoff; None if no attempt is left.
    `before`: the run's deferred resource writes, sent first (each fenced on its own)."""
    if before:
        *first, (sql, params) = before
        _execute(sql, params, async_commit=False, before=first)
    if attempt >= job.max_attempts:
        return None
    delay = _backoff(attempt)
    note = f"retrying in {delay:g} s (attempt {attempt + 1} of {job.max_attempts})"
    steps = list(job.steps)
    if steps and steps[-1].get("attempt") == attempt and steps[-1].get("state") == "failed":
        steps[-1] = {**steps[-1], "state": "retrying", "message": f"{_user_message(exc)} — {note}"}
    updated = Job.objects.filter(pk=job.pk, attempts=attempt, state=JobState.RUNNING).update(
        state=JobState.QUEUED,
        retry_at=_later(delay),
        steps=steps,
        step=f"{_user_message(exc)} — {note[0].upper()}{note[1:]}",
        heartbeat=None,
        dispatched_at=_later(delay),
        dispatch_count=1,
    )
    if not updated:
        return None
    logger.info("job %s attempt %s failed transiently (%s); %s", job.pk, attempt, exc, note)
    return delay


def job_execute(job_id: str) -> str | None:
    """Claim and run one job; the Celery task's whole body. Returns the state it ended in, if any
    ("queued" when a transient failure put it back for a later attempt)."""
    job, target = _claim_reconnecting(job_id)
    if job is None:
        logger.info("job %s not claimable (done, running elsewhere, not due, or out of attempts)", job_id)
        return None
    attempt = job.attempts
    ctx = JobContext(job=job, attempt=attempt, target=target)
    if attempt == 1 and _starts_with_claim(_handlers.get(job.kind)):
        ctx.prestarted = job.steps[-1]
    heartbeat = _Heartbeat(str(job.pk), attempt)
    heartbeat.start()
    try:
        with audit.acting_as(lambda: job.created_by):  # what the job does, it does for whoever asked
            _handlers[job.kind].run(ctx)
    except JobLost:
        logger.warning(
            "job %s attempt %s lost its claim (cancelled, timed out or superseded); stopping", job_id, attempt
        )
        return None
    except JobTimedOut:
        _finish(
            job,
            attempt,
            JobState.FAILED,
            _timeout_message(job),
            pending=ctx.pending,
            before=ctx.take_deferred(),
            by_run=True,
        )
        return JobState.FAILED
    except Exception as exc:
        ctx.fail_prestarted(exc)
        if isinstance(exc, tuple(_transient_errors)):
            delay = _requeue_after_transient(job, attempt, exc, before=ctx.take_deferred())
            if delay is not None:
                job_dispatch(str(job.pk), countdown=delay)
                return JobState.QUEUED
        elif not isinstance(exc, tuple(_user_errors)):
            logger.error("job %s failed:\n%s", job_id, traceback.format_exc())
        _finish(
            job,
            attempt,
            JobState.FAILED,
            _user_message(exc),
            pending=ctx.pending,
            before=ctx.take_deferred(),
            by_run=True,
        )
        return JobState.FAILED
    finally:
        heartbeat.stop()
    _finish(job, attempt, JobState.SUCCEEDED, pending=ctx.pending, before=ctx.take_deferred(), by_run=True)
    return JobState.SUCCEEDED


def _timeout_message(job: Job) -> str:
    handler = _handlers.get(job.kind)
    seconds = handler.deadline() if handler else settings.CANOPY_JOB_DEADLINE_SECONDS
    where = f" in step '{job.step}'" if job.step else ""
    return f"Timed out: the job did not finish within {seconds:g} s{where}."


def job_fail(job: Job, message: str) -> bool:
    """Fail a job from outside its run (the sweeper), setting resource state."""
    return _finish(job, job.attempts, JobState.FAILED, message)


def job_end(job: Job, state: str, message: str = "") -> bool:
    """End a job no worker runs (a job group's parent, portal.job_groups) with its handler's hooks."""
    return _finish(job, job.attempts, state, message)


# --- staff and tenant actions on jobs ---------------------------------------------------------------


@audited("job.cancel", target="job")
def job_cancel(*, job: Job, by: Any) -> Job:
    """Cancel a queued or running job (staff). It ends at once as Cancelled and its handler puts the
    resource in a state the user can act on; a running worker stops at its next step boundary, and
    the fencing token makes anything it still writes harmless. Raises NotAllowed if it has ended."""
    # --- job groups: cancelling a parent cancels its unfinished children (portal.job_groups)
    if job.params.get("group"):
        from portal.job_groups import group_cancel

        return group_cancel(job=job, by=by)
    for _ in range(5):  # the attempt we read may move under us (a worker claiming it): read again
        job = Job.objects.get(pk=job.pk)
        if job.is_finished:
            raise NotAllowed(f"The job '{job.label}' has already ended ({job.get_state_display().lower()}).")
        who = getattr(by, "email", None) or "staff"
        if _finish(job, job.attempts, JobState.CANCELLED, f"Cancelled by {who}."):
            return job
    raise Conflict("The job changed while it was being cancelled; try again.")


@audited("job.retry", target="job")
def job_retry(*, job: Job, by: Any) -> Job:
    """Run a failed (or cancelled) job again, resuming at the step that failed.

    The handler checks the resource still allows it (and puts it back in its busy state) in the
    same transaction; the job gets a fresh set of attempts and deadline. Raises NotAllowed or Conflict.
    """
    # --- job groups: retrying a parent retries its failed children (portal.job_groups)
    if job.params.get("group"):
        from portal.job_groups import group_retry

        return group_retry(job=job, by=by)
    handler = _handlers.get(job.kind)
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.state not in (JobState.FAILED, JobState.CANCELLED):
            raise NotAllowed(
                f"Only a failed or cancelled job can be retried; this one is {job.get_state_display().lower()}."
            )
        busy = (
            Job.objects.filter(target_type=job.target_type, target_id=job.target_id, state__in=ACTIVE_JOB_STATES)
            .exclude(pk=job.pk)
            .exists()
        )
        if busy:
            raise Conflict(f"Another job is already working on '{job.target_name}'.")
        if handler is None:
            raise NotAllowed(f"Jobs of kind '{job.kind}' can't be retried.")
        handler.prepare_retry(job, by=by)
        who = getattr(by, "email", None) or "staff"
        steps = [
            *job.steps,
            {"name": f"Retry requested by {who}", "state": "retry", "attempt": job.attempts, "started": _iso_now()},
        ]
        Job.objects.filter(pk=job.pk).update(
            state=JobState.QUEUED,
            error="",
            step="",
            steps=steps,
            finished_at=None,
            retry_at=None,
            deadline_at=None,
            heartbeat=None,
            dispatched_at=Now(),
            dispatch_count=1,
            retries=F("retries") + 1,
            max_attempts=F("attempts") + settings.CANOPY_JOB_MAX_ATTEMPTS,
        )
        job_id = str(job.pk)
        transaction.on_commit(lambda: job_dispatch(job_id))
    job.refresh_from_db()
    return job


def job_can_retry(job: Job) -> bool:
    """Whether the pages offer Retry for this job (the service still checks the resource)."""
    handler = _handlers.get(job.kind)
    return (
        job.state in (JobState.FAILED, JobState.CANCELLED)
        and handler is not None
        and type(handler).prepare_retry is not JobHandler.prepare_retry
    )


def job_wipe_secrets(*, target: models.Model) -> int:
    """Forget the secrets kept for retries of a resource's jobs (e.g. once the resource is deleted)."""
    return (
        Job.objects.filter(target_type=target._meta.label_lower, target_id=str(target.pk))
        .exclude(secret="")
        .update(secret="")
    )


# --- sweeping ------------------------------------------------------------------------------------------


def _record_send(job_id: Any) -> None:
    Job.objects.filter(pk=job_id).update(dispatched_at=Now(), dispatch_count=F("dispatch_count") + 1)


@dataclass
class SweepResult:
    requeued: int = 0
    resent: int = 0
    failed: int = 0
    timed_out: int = 0
    secrets_wiped: int = 0


def job_sweep(*, send: Callable[[str], None] | None = None) -> SweepResult:
    """Recover jobs whose worker died or whose message was lost, and end jobs that can't finish.
    Safe to run anywhere, any time; every decision is made on the database's clock.

    Re-sending is harmless: a message for a job that is done, not due, or running with a fresh
    heartbeat is dropped by the claim. A message that keeps getting lost (broker down, no worker)
    is re-sent less and less often, and the job shows "waiting for a worker" instead.
    """
    send = send or job_dispatch
    result = SweepResult()

    for job in Job.objects.filter(state__in=ACTIVE_JOB_STATES, deadline_at__lt=Now()):
        if _finish(job, job.attempts, JobState.FAILED, _timeout_message(job)):
            logger.warning("job %s timed out in step %r", job.pk, job.step)
            result.timed_out += 1

    for job in Job.objects.filter(state=JobState.RUNNING, heartbeat__lt=_ago(settings.CANOPY_JOB_STALE_SECONDS)):
        if job.attempts >= job.max_attempts:
            if job_fail(job, f"The job stopped responding {job.attempts} times (worker lost); giving up."):
                result.failed += 1
        else:
            logger.warning("job %s: worker lost (heartbeat %s); re-queueing", job.pk, job.heartbeat)
            _record_send(job.pk)
            send(str(job.pk))
            result.requeued += 1

    # A queued job is lost if its message should have been consumed long ago. Each re-send doubles
    # the wait before the next one (capped), so a dead broker isn't hammered forever.
    requeue = settings.CANOPY_JOB_REQUEUE_SECONDS
    lost = Q()
    for n in range(6):
        wait = min(requeue * 2**n, 3600)
        cond = Q(dispatch_count=n + 1) if n < 5 else Q(dispatch_count__gte=n + 1)
        lost |= cond & Q(dispatched_at__lt=_ago(wait))
    lost |= Q(dispatched_at__isnull=True, created_at__lt=_ago(requeue))
    for job in Job.objects.filter(state=JobState.QUEUED).filter(lost).only("pk", "dispatch_count"):
        if job.dispatch_count >= 2:
            logger.warning(
                "job %s has been sent %s times and no worker took it; is the broker up?", job.pk, job.dispatch_count
            )
        _record_send(job.pk)
        send(str(job.pk))
        result.resent += 1

    result.secrets_wiped = (
        Job.objects.filter(
            state__in=FINISHED_JOB_STATES, finished_at__lt=_ago(settings.CANOPY_JOB_SECRET_RETENTION_SECONDS)
        )
        .exclude(secret="")
        .update(secret="")
    )
    return result

"""The job framework: one way to run long work (provisioning) outside the web request.

Life of a job:

1. A service calls `job_create()` inside the transaction that changes the resource. The message is
   sent to the broker on commit (never for a rolled-back change).
2. A worker's task calls `job_execute()`, which *claims* the job with a compare-and-swap UPDATE:
   a queued job, or a running one whose heartbeat is stale (its worker died). The claim increments
   `attempts`; every later write of that run is conditional on it (the fencing token).
3. The handler registered for the job's kind runs its steps. A heartbeat thread keeps the claim
   fresh. Handlers call drivers idempotently (keyed by the resource id), so a re-run after a crash
   picks up what exists instead of creating it twice.
4. On success or failure the handler's hooks set the resource's state in the same transaction that
   ends the job, and the job's secret is wiped.

`job_sweep()` (Celery beat) re-sends queued jobs whose message may be lost and running jobs whose
worker died, and fails jobs that ran out of attempts.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import F, Q
from django.utils import timezone

from portal import crypto
from portal.exceptions import ServiceError
from portal.models import FINISHED_JOB_STATES, Job, JobState

logger = logging.getLogger(__name__)


class JobLost(Exception):
    """This run no longer owns the job (a newer attempt claimed it, or it ended): stop quietly."""


class JobFailure(Exception):
    """A failure whose message is meant for the user (e.g. a fabric refusal). Drivers' errors are
    translated into it by handlers, or raise ServiceError/DriverError which are treated the same."""


class JobHandler(ABC):
    """Base class of a job kind. Subclasses set `kind` and implement `run`.

    `on_succeeded` and `on_failed` set the resource's state; they run inside the transaction that
    ends the job, so resource state always follows the job.
    """

    kind: ClassVar[str]
    label: ClassVar[str] = ""

    @abstractmethod
    def run(self, ctx: JobContext) -> None:
        """Do the work in named steps (ctx.step); raise to fail the job with a message."""

    def on_succeeded(self, job: Job) -> None:  # noqa: B027 - optional hook
        """Set the resource's final state. Default: nothing."""

    def on_failed(self, job: Job) -> None:  # noqa: B027 - optional hook
        """Set the resource's state after a failure. Default: nothing."""


_handlers: dict[str, JobHandler] = {}
H = TypeVar("H", bound=type[JobHandler])

# Errors whose text is safe and useful to show the user as the job's error.
_user_errors: list[type[BaseException]] = [JobFailure, ServiceError]


def register(handler_class: H) -> H:
    """Class decorator: register a JobHandler for its `kind`."""
    _handlers[handler_class.kind] = handler_class()
    return handler_class


def register_user_error(exc_class: type[BaseException]) -> None:
    """Let an app declare an exception type whose message is shown to users (e.g. DriverError)."""
    if exc_class not in _user_errors:
        _user_errors.append(exc_class)


def get_handler(kind: str) -> JobHandler:
    return _handlers[kind]


def job_label(job: Job) -> str:
    handler = _handlers.get(job.kind)
    label = handler.label if handler and handler.label else job.kind
    return f"{label} {job.target_name}".strip()


def _now() -> Any:
    return timezone.now()


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
) -> Job:
    """Create a job for `target` and send it when the surrounding transaction commits.

    Call it inside the transaction that changes the resource, so both exist or neither does.
    `secret` is stored encrypted on the job row (never in the broker) and wiped when the job ends.
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
        secret=crypto.encrypt(secret) if secret else "",
        max_attempts=settings.CANOPY_JOB_MAX_ATTEMPTS,
    )
    job_id = str(job.pk)
    transaction.on_commit(lambda: job_dispatch(job_id))
    return job


def job_dispatch(job_id: str) -> None:
    """Send the job's message. A broker error is logged, not raised: the sweeper re-sends it."""
    from portal.tasks import run_job

    try:
        run_job.delay(str(job_id))
    except Exception:
        logger.exception("could not send job %s to the broker; the sweeper will retry", job_id)
        return
    Job.objects.filter(pk=job_id).update(dispatched_at=_now())


# --- claiming and running ---------------------------------------------------------------------------


def _stale_before() -> Any:
    return _now() - timedelta(seconds=settings.CANOPY_JOB_STALE_SECONDS)


def job_claim(job_id: str) -> Job | None:
    """Claim a job for this worker, or return None if it isn't ours to run.

    Compare-and-swap: only a queued job, or a running job whose heartbeat is stale, is claimed,
    and only while attempts remain. Two workers racing for one job: exactly one UPDATE matches.
    """
    now = _now()
    claimable = Q(state=JobState.QUEUED) | Q(state=JobState.RUNNING, heartbeat__lt=_stale_before())
    updated = (
        Job.objects.filter(pk=job_id)
        .filter(claimable, attempts__lt=F("max_attempts"))
        .update(state=JobState.RUNNING, attempts=F("attempts") + 1, heartbeat=now, error="")
    )
    if not updated:
        return None
    job = Job.objects.get(pk=job_id)
    if job.started_at is None:
        Job.objects.filter(pk=job_id, attempts=job.attempts).update(started_at=now)
        job.started_at = now
    return job


class _Heartbeat(threading.Thread):
    """Refreshes the job's heartbeat while the handler runs, from its own DB connection."""

    def __init__(self, job_id: str, attempt: int) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{job_id}")
        self.job_id, self.attempt = job_id, attempt
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.CANOPY_JOB_HEARTBEAT_SECONDS):
                try:
                    Job.objects.filter(pk=self.job_id, attempts=self.attempt, state=JobState.RUNNING).update(
                        heartbeat=_now()
                    )
                except Exception:  # a lost beat is survivable; the next one may get through
                    logger.warning("heartbeat of job %s failed", self.job_id, exc_info=True)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


@dataclass
class JobContext:
    """What a handler sees of its job: params, secret, progress and steps, fenced by `attempt`."""

    job: Job
    attempt: int

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    def secret(self) -> str | None:
        return crypto.decrypt(self.job.secret) if self.job.secret else None

    def _write(self, **fields: Any) -> None:
        updated = Job.objects.filter(pk=self.job.pk, attempts=self.attempt, state=JobState.RUNNING).update(
            heartbeat=_now(), **fields
        )
        if not updated:
            raise JobLost(str(self.job.pk))
        for name, value in fields.items():
            setattr(self.job, name, value)

    def progress(self, percent: int, message: str | None = None) -> None:
        fields: dict[str, Any] = {"percent": max(0, min(100, int(percent)))}
        if message is not None:
            fields["step"] = message
        self._write(**fields)

    @contextmanager
    def step(self, name: str, *, done_percent: int) -> Iterator[None]:
        """Record a named step in the job's log; on exit, progress jumps to `done_percent`."""
        steps = list(self.job.steps)
        entry = {"name": name, "state": "running", "attempt": self.attempt, "started": _now().isoformat()}
        steps.append(entry)
        # Move the bar as soon as work starts, so a long first step doesn't look stuck at 0%.
        self._write(steps=steps, step=name, percent=max(self.job.percent, 5))
        try:
            yield
        except JobLost:
            raise
        except BaseException as exc:
            entry.update(state="failed", ended=_now().isoformat(), message=_user_message(exc))
            with contextlib.suppress(JobLost):
                self._write(steps=steps)
            raise
        entry.update(state="done", ended=_now().isoformat())
        self._write(steps=steps, percent=done_percent)

    @contextmanager
    def guarded(self) -> Iterator[None]:
        """A transaction that holds this run's claim: resource writes inside it can't race a newer run."""
        with transaction.atomic():
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


def _finish(job: Job, attempt: int, state: str, error: str = "") -> bool:
    """End the job (fenced by attempt) and let its handler set the resource state, atomically."""
    handler = _handlers.get(job.kind)
    with transaction.atomic():
        updated = (
            Job.objects.filter(pk=job.pk, attempts=attempt)
            .exclude(state__in=FINISHED_JOB_STATES)
            .update(
                state=state,
                error=error,
                secret="",
                finished_at=_now(),
                percent=100 if state == JobState.SUCCEEDED else F("percent"),
                step="",
            )
        )
        if not updated:
            return False
        job.refresh_from_db()
        if handler is not None:
            if state == JobState.SUCCEEDED:
                handler.on_succeeded(job)
            else:
                handler.on_failed(job)
    return True


def job_execute(job_id: str) -> str | None:
    """Claim and run one job; the Celery task's whole body. Returns the state it ended in, if any."""
    job = job_claim(job_id)
    if job is None:
        logger.info("job %s not claimable (done, running elsewhere, or out of attempts)", job_id)
        return None
    attempt = job.attempts
    ctx = JobContext(job=job, attempt=attempt)
    heartbeat = _Heartbeat(str(job.pk), attempt)
    heartbeat.start()
    try:
        _handlers[job.kind].run(ctx)
    except JobLost:
        logger.warning("job %s attempt %s lost its claim; stopping", job_id, attempt)
        return None
    except Exception as exc:
        if not isinstance(exc, tuple(_user_errors)):
            logger.error("job %s failed:\n%s", job_id, traceback.format_exc())
        _finish(job, attempt, JobState.FAILED, _user_message(exc))
        return JobState.FAILED
    finally:
        heartbeat.stop()
    _finish(job, attempt, JobState.SUCCEEDED)
    return JobState.SUCCEEDED


def job_fail(job: Job, message: str) -> bool:
    """Fail a job from outside its run (sweeper, cancellation by staff), setting resource state."""
    return _finish(job, job.attempts, JobState.FAILED, message)


# --- sweeping ------------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    requeued: int = 0
    resent: int = 0
    failed: int = 0


def job_sweep(*, send: Callable[[str], None] | None = None) -> SweepResult:
    """Recover jobs whose worker died or whose message was lost. Safe to run anywhere, any time.

    Re-sending is harmless: a message for a job that is done or running with a fresh heartbeat is
    dropped by the claim.
    """
    send = send or job_dispatch
    result = SweepResult()
    now = _now()
    for job in Job.objects.filter(state=JobState.RUNNING, heartbeat__lt=_stale_before()):
        if job.attempts >= job.max_attempts:
            if job_fail(job, f"The job stopped responding {job.attempts} times (worker lost); giving up."):
                result.failed += 1
        else:
            logger.warning("job %s: worker lost (heartbeat %s); re-queueing", job.pk, job.heartbeat)
            send(str(job.pk))
            result.requeued += 1
    lost_before = now - timedelta(seconds=settings.CANOPY_JOB_REQUEUE_SECONDS)
    lost = Job.objects.filter(state=JobState.QUEUED).filter(
        Q(dispatched_at__lt=lost_before) | Q(dispatched_at__isnull=True, created_at__lt=lost_before)
    )
    for job_id in lost.values_list("pk", flat=True):
        send(str(job_id))
        result.resent += 1
    return result

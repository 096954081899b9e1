"""Celery beat's scheduler for Canopy: it runs the job sweeper itself, in the beat process.

The sweeper is what recovers jobs whose worker died. Sent as a task to the workers' queue it would
share their fate: with every worker dead, wedged or busy, nothing would sweep and nothing would
notice. Run here, it needs only this process, the database and the broker (to re-send a job).
Other periodic work can still go through CELERY_BEAT_SCHEDULE as tasks; this class sends those as
any beat does. Configured by CELERY_BEAT_SCHEDULER; exactly one beat runs per deployment.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.beat import PersistentScheduler
from django.conf import settings
from django.db import close_old_connections

from portal import jobs

logger = logging.getLogger(__name__)


class Scheduler(PersistentScheduler):
    """A PersistentScheduler whose tick also runs `portal.jobs.job_sweep()` every sweep interval."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sweep_interval = float(settings.CANOPY_JOB_SWEEP_SECONDS)
        self.next_sweep = 0.0  # monotonic time; 0 sweeps on the first tick, i.e. at start-up
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if time.monotonic() >= self.next_sweep:
            self.sweep()
            # Counted from the end of this sweep, so a slow one is not followed by another at once.
            self.next_sweep = time.monotonic() + self.sweep_interval
        delay = super().tick(*args, **kwargs)
        # Wake up in time for the next sweep even when no scheduled task is due before it.
        return min(delay, max(self.next_sweep - time.monotonic(), 0.0))

    def sweep(self) -> None:
        """One sweep; a failure (database or broker down) is logged and the next sweep tries again."""
        # Like a request: drop a connection the database closed or that outlived CONN_MAX_AGE.
        close_old_connections()
        try:
            result = jobs.job_sweep()
        except Exception:
            logger.exception("job sweep failed; trying again in %ss", self.sweep_interval)
            return
        finally:
            close_old_connections()
        if result.requeued or result.resent or result.failed or result.timed_out:
            logger.info(
                "job sweep: %s re-queued (worker lost), %s re-sent (message lost), %s failed (out of attempts), "
                "%s timed out",
                result.requeued,
                result.resent,
                result.failed,
                result.timed_out,
            )

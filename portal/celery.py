"""The Celery app shared by workers and beat. Tasks are thin: they hand a job id to portal.jobs."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_shutdown, worker_shutdown
from django.db import close_old_connections, connection

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.staff")

app = Celery("canopy")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _before_task(sender: object = None, **kwargs: object) -> None:
    """Django's request cycle for DB connections (below); a job's run skips the ping of a reused
    connection: its claim reconnects once if the connection turns out broken (portal.jobs
    `_claim_reconnecting`), which spares every job a round trip to the database."""
    _recycle_db_connections()
    if getattr(sender, "name", None) == "portal.tasks.run_job":
        connection.health_check_done = True  # type: ignore[attr-defined]


@task_postrun.connect
def _recycle_db_connections(**kwargs: object) -> None:
    """Give each task Django's request cycle for DB connections.

    Celery's Django fixup closes every connection around every task (a new PostgreSQL connection
    per job) unless CELERY_DB_REUSE_MAX is set (see settings). With it set, this keeps connections
    only while Django would: younger than CONN_MAX_AGE and without errors; CONN_HEALTH_CHECKS then
    pings a reused connection before the task's first query.
    """
    close_old_connections()


@worker_process_shutdown.connect
@worker_shutdown.connect
def _flush_coalesced_bookkeeping(**kwargs: object) -> None:
    """A worker stopping cleanly runs the bookkeeping it was coalescing (a cloud's usage) first."""
    from portal.jobs import job_flush_coalesced

    job_flush_coalesced()  # logs each failure itself

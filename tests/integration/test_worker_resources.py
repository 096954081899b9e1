"""What a real worker holds from job to job: its database connection (a new one per job made
provisioning 20x slower than Celery on the same broker)."""

from __future__ import annotations

import pytest
from django.db import connection

from portal.models import Job
from tests.integration.processes import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def finished(job: Job) -> Job:
    return wait_for(lambda: (j := Job.objects.get(pk=job.pk)).is_finished and j, what=f"job {job.pk} to end")


def other_backends() -> set[tuple[int, object]]:
    """PostgreSQL sessions on the test database other than this test's own: (pid, start time)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return set(cursor.fetchall())


def test_a_worker_keeps_its_database_connection_from_job_to_job(make_world, start_worker):
    world = make_world()
    start_worker()
    finished(world.quick_create("web01")[1])
    after_first = other_backends()

    for name in ("web02", "web03", "web04"):
        finished(world.quick_create(name)[1])

    assert after_first, "the worker closed its connection after the job"
    assert other_backends() == after_first, "the worker connected anew for a later job"

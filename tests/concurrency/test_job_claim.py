"""The claim on PostgreSQL is one UPDATE ... RETURNING: two workers racing for one job (the sweeper
re-sent its message while the first was still claiming) can't both run it, nor share a token."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from fabric.models import VirtualMachine, VMState
from portal import jobs
from portal.models import Job, JobState
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued_create(tmp_path, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    monkeypatch.setattr(jobs, "job_dispatch", lambda job_id, **kw: None)  # no worker here
    endpoint = factories.make_endpoint(tmp_path)
    subscription = factories.make_subscription(factories.UserFactory(), factories.make_plan(endpoint))
    return factories.make_vm_job(subscription, endpoint, "raced")


def test_a_claim_waiting_on_another_finds_the_job_taken(queued_create):
    _, job = queued_create
    claimed, release = threading.Event(), threading.Event()
    first: list[Job | None] = []

    def claim_and_hold() -> None:
        try:
            with transaction.atomic():  # the first claim's row lock is held until this commits
                first.append(jobs.job_claim(str(job.pk)))
                claimed.set()
                release.wait(timeout=20)
        finally:
            connection.close()

    holder = threading.Thread(target=claim_and_hold)
    holder.start()
    try:
        assert claimed.wait(timeout=10)
        second: list[Job | None] = []
        racer = threading.Thread(target=lambda: (second.append(jobs.job_claim(str(job.pk))), connection.close()))
        racer.start()
        racer.join(timeout=1)
        assert racer.is_alive()  # it waits on the first claim's row lock...
        release.set()
        racer.join(timeout=10)
    finally:
        release.set()
        holder.join(timeout=10)
    # ...then re-checks the row the first claim wrote: running with a fresh heartbeat, not claimable.
    assert first[0] is not None and first[0].attempts == 1
    assert second == [None]
    assert Job.objects.get(pk=job.pk).attempts == 1


def test_a_first_claim_starts_the_first_step_and_the_run_finishes_it(queued_create):
    vm, job = queued_create
    claimed = jobs.job_claim(str(job.pk))
    assert claimed is not None
    assert claimed.step == "Create the virtual machine on the fabric" and claimed.percent == 5
    assert [s["state"] for s in Job.objects.get(pk=job.pk).steps] == ["running"]
    Job.objects.filter(pk=job.pk).update(heartbeat=timezone.now() - timedelta(minutes=5))
    assert jobs.job_execute(str(job.pk)) == JobState.SUCCEEDED  # a second attempt: steps as usual
    job.refresh_from_db()
    # The first run died in its first step (the log keeps it as it left it); the second did both.
    assert [(s["attempt"], s["state"]) for s in job.steps] == [(1, "running"), (2, "done"), (2, "done")]
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.RUNNING


def test_a_run_that_cannot_load_its_target_fails_the_step_its_claim_started(queued_create):
    vm, job = queued_create
    VirtualMachine.objects.filter(pk=vm.pk).delete()
    assert jobs.job_execute(str(job.pk)) == JobState.FAILED
    job.refresh_from_db()
    assert [s["state"] for s in job.steps] == ["failed"] and job.steps[0]["attempt"] == 1


def test_the_target_read_with_the_claim_is_the_row_as_the_claim_found_it(queued_create, monkeypatch):
    """The VM is read in the claim's round trip (JobHandler.target_query), not by load()."""
    vm, job = queued_create
    handler = jobs.get_handler("vm.create")
    monkeypatch.setattr(type(handler), "load", lambda self, ctx: pytest.fail("load() ran"))
    VirtualMachine.objects.filter(pk=vm.pk).update(admin_username="changed-before-the-claim")
    seen: list[str] = []
    create = type(handler).create
    monkeypatch.setattr(
        type(handler),
        "create",
        lambda self, ctx, target: (seen.append(target.admin_username), create(self, ctx, target))[1],
    )
    assert jobs.job_execute(str(job.pk)) == JobState.SUCCEEDED
    assert seen == ["changed-before-the-claim"]


def test_a_run_on_a_connection_the_database_dropped_claims_on_a_new_one(queued_create):
    """Workers skip the ping of their reused connection before a job (portal.celery): the claim
    itself notices a connection the database dropped (a restart between two tasks) and reconnects."""
    _, job = queued_create
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    dropped = threading.Thread(target=lambda: (_terminate(pid), connection.close()))
    dropped.start()
    dropped.join(timeout=10)
    assert jobs.job_execute(str(job.pk)) == JobState.SUCCEEDED


def _terminate(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])

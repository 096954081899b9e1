"""Beat's scheduler runs the job sweeper itself (portal.beat), in-process here; tests/integration
runs `celery beat` as a process with no worker alive."""

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from fabric.models import VirtualMachine, VMState
from portal import jobs
from portal.beat import Scheduler
from portal.celery import app as celery_app
from portal.models import Job, JobState
from tests import factories

# The scheduler closes stale database connections, as a request does: that needs real transactions.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def scheduler(settings, tmp_path) -> Scheduler:
    settings.CANOPY_JOB_SWEEP_SECONDS = 7
    return Scheduler(app=celery_app, schedule_filename=str(tmp_path / "celerybeat-schedule"))


def test_beat_sweeps_at_start_and_wakes_up_in_time_for_the_next_sweep(scheduler, subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint, run=False)
    job = Job.objects.get(target_id=str(vm.pk))
    # Its worker died on the last attempt: the sweeper fails it.
    stale = timezone.now() - timedelta(minutes=5)
    Job.objects.filter(pk=job.pk).update(state=JobState.RUNNING, attempts=3, heartbeat=stale)

    delay = scheduler.tick()

    job.refresh_from_db()
    assert job.state == JobState.FAILED and "giving up" in job.error
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.FAILED
    # Beat's own loop would sleep up to 5 minutes with nothing scheduled; the sweep is due sooner.
    assert 0 < delay <= 7


def test_a_failed_sweep_is_logged_and_beat_goes_on(scheduler, monkeypatch, caplog):
    def database_down() -> jobs.SweepResult:
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(jobs, "job_sweep", database_down)
    assert 0 < scheduler.tick() <= 7
    assert "job sweep failed" in caplog.text

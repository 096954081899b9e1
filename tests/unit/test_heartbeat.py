"""The process's heartbeat: one UPDATE keeps every run of the process claimed, and only current runs."""

from datetime import timedelta

from django.utils import timezone

from portal import jobs
from portal.models import Job, JobState
from tests import factories


def test_one_update_refreshes_every_run_of_the_process_but_no_lost_or_ended_one(
    subscription, endpoint, django_assert_num_queries
):
    created = [factories.make_vm(subscription, endpoint, f"web{i}", run=False) for i in range(4)]
    runs = [jobs.job_claim(str(Job.objects.get(target_id=str(vm.pk)).pk)) for vm in created]
    current, other, lost, ended = (str(run.pk) for run in runs if run is not None)
    long_ago = timezone.now() - timedelta(minutes=5)
    Job.objects.update(heartbeat=long_ago)
    Job.objects.filter(pk=lost).update(attempts=2)  # the sweeper gave it to a newer attempt
    Job.objects.filter(pk=ended).update(state=JobState.SUCCEEDED)
    heartbeat = jobs._ProcessHeartbeat(autostart=False)
    for job_id in (current, other, lost, ended):
        heartbeat.track(job_id, 1)

    with django_assert_num_queries(1):
        assert heartbeat.beat() == 2
    refreshed = {str(pk) for pk in Job.objects.filter(heartbeat__gt=long_ago).values_list("pk", flat=True)}
    assert refreshed == {current, other}

    heartbeat.untrack(other, 1)
    Job.objects.update(heartbeat=long_ago)
    assert heartbeat.beat() == 1
    assert Job.objects.get(pk=other).heartbeat == long_ago

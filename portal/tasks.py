"""Celery tasks: thin wrappers that hand a job id to portal.jobs (never a secret, never a model).

The job sweeper is no task: beat runs it in its own process (portal.beat), apart from the workers.
"""

from celery import shared_task

from portal import jobs


@shared_task(name="portal.tasks.run_job", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_job(job_id: str) -> str | None:
    return jobs.job_execute(job_id)

"""Celery tasks: thin wrappers that hand a job id to portal.jobs (never a secret, never a model)."""

from celery import shared_task

from portal import jobs


@shared_task(name="portal.tasks.run_job", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_job(job_id: str) -> str | None:
    return jobs.job_execute(job_id)


@shared_task(name="portal.tasks.sweep_jobs", ignore_result=True)
def sweep_jobs() -> dict[str, int]:
    result = jobs.job_sweep()
    return {"requeued": result.requeued, "resent": result.resent, "failed": result.failed}

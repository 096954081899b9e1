"""The baseline of bench/jobs.py: a Celery task that does nothing but note when it ran.

Loaded into the bench's workers with `--include bench.noop_tasks` (PYTHONPATH at the repository),
so the no-op tasks run in the same worker processes, settings and broker as the provisioning jobs.
Its options are those of portal.tasks.run_job (late ack, reject on worker lost, no result).
"""

from __future__ import annotations

import time

import redis
from celery import current_app, shared_task

_client: redis.Redis | None = None


@shared_task(name="bench.noop", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def noop(key: str) -> None:
    """Append the wall-clock time of this execution to the Redis list `key` (on the broker's server)."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(current_app.conf.broker_url)
    _client.rpush(key, repr(time.time()))

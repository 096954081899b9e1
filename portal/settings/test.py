"""pytest settings: the tenant site by default; tests of the staff site override ROOT_URLCONF.

The README's test command points DATABASE_URL at PostgreSQL and CELERY_BROKER_URL at Redis.
"""

import os

os.environ.setdefault("CANOPY_JOB_HEARTBEAT_SECONDS", "0.5")
os.environ.setdefault("CANOPY_JOB_STALE_SECONDS", "3")
os.environ.setdefault("CANOPY_JOB_REQUEUE_SECONDS", "2")
# Tests read a cloud's usage right after a job; those about coalescing set it themselves.
os.environ.setdefault("CANOPY_JOB_COALESCE_SECONDS", "0")

from .tenant import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Jobs are dispatched to a broker no worker in a unit test listens to; tests run them in-process
# through portal.jobs.job_execute (tests.factories.run_queued_jobs), or start real workers
# (tests/integration).

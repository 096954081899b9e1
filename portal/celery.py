"""The Celery app shared by workers and beat. Tasks are thin: they hand a job id to portal.jobs."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.staff")

app = Celery("canopy")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

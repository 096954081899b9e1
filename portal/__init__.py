"""Canopy project package: settings, the two sites' URLconfs, Celery, and shared plumbing (jobs)."""

from .celery import app as celery_app

__all__ = ["celery_app"]

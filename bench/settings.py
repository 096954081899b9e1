"""The tenant site's settings with the bench URLconf (bench.urls): the product plus the bench's
floor and minimal views, which exist only here."""

from portal.settings.tenant import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}

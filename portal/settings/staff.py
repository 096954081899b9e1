"""The admin portal (provider staff). Own URLconf and cookie names: see portal.settings.tenant."""

from .base import *  # noqa: F403

CANOPY_SITE = "staff"
ROOT_URLCONF = "portal.urls.staff"
# Browsers share cookies across the ports of one host, so each site names its own.
SESSION_COOKIE_NAME = "canopy_staff_session"
CSRF_COOKIE_NAME = "canopy_staff_csrftoken"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "staff:dashboard"
SPECTACULAR_SETTINGS = {**SPECTACULAR_SETTINGS, "TITLE": "Canopy admin API"}  # noqa: F405

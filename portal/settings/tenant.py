"""The tenant portal. No staff URL resolves here: its URLconf includes none of them."""

from .base import *  # noqa: F403

CANOPY_SITE = "tenant"
ROOT_URLCONF = "portal.urls.tenant"
SESSION_COOKIE_NAME = "canopy_tenant_session"
CSRF_COOKIE_NAME = "canopy_tenant_csrftoken"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "tenant:dashboard"
SPECTACULAR_SETTINGS = {**SPECTACULAR_SETTINGS, "TITLE": "Canopy tenant API"}  # noqa: F405

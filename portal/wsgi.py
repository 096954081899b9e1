"""WSGI entry point; DJANGO_SETTINGS_MODULE picks the site (portal.settings.staff or .tenant)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.tenant")
application = get_wsgi_application()

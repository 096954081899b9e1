from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Canopy portal"

    def ready(self) -> None:
        # Each app registers its job handlers in its own jobs.py (like admin.py for django.contrib.admin).
        autodiscover_modules("jobs")

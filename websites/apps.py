from django.apps import AppConfig


class WebsitesConfig(AppConfig):
    """PaaS: web site clouds, sites, publish profiles and databases (see the roadmap)."""

    name = "websites"
    verbose_name = "Web sites"

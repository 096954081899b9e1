from typing import Any

from django.apps import AppConfig
from django.db.models import QuerySet
from django.utils.module_loading import autodiscover_modules


def _active_jobs(user: Any) -> QuerySet[Any]:
    from portal.selectors import job_list

    return job_list(user=user).filter(state__in=["queued", "running"])


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Canopy portal"

    def ready(self) -> None:
        from django.contrib.auth import signals

        from portal import audit, navigation
        from portal.navigation import OverviewTile, RailEntry, Site
        from portal.views.dashboards import recent_jobs_tile

        # Each app registers its job handlers in its own jobs.py (like admin.py for django.contrib.admin).
        autodiscover_modules("jobs")
        # The portal's own pages: each site's overview first and its jobs last, the services between.
        homes: tuple[tuple[Site, str], ...] = (("staff", "Overview"), ("tenant", "All items"))
        for site, home in homes:
            navigation.register(
                RailEntry(site, home, f"{site}:dashboard", order=0),
                RailEntry(site, "Jobs", f"{site}:jobs", order=90, count=_active_jobs, active=("job",)),
                OverviewTile(site, "Recent jobs", "components/_overview_jobs.html", recent_jobs_tile, order=90),
                # The audit log is portal plumbing, so the portal registers it itself.
                RailEntry(site, "Audit log", f"{site}:audit", order=92, active=("audit",)),
            )
        navigation.register(RailEntry("staff", "Settings", "staff:settings", order=98, active=("settings",)))
        # Sign-in security of the admin portal, after the API tokens.
        navigation.register(
            RailEntry("staff", "Two-factor sign-in", "staff:two-factor", order=96),
            RailEntry("staff", "Sign-in lockouts", "staff:signin-lockouts", order=97, active=("signin-lockout",)),
        )
        signals.user_logged_in.connect(audit.on_signed_in, dispatch_uid="canopy-audit-sign-in")
        signals.user_logged_out.connect(audit.on_signed_out, dispatch_uid="canopy-audit-sign-out")
        signals.user_login_failed.connect(audit.on_sign_in_failed, dispatch_uid="canopy-audit-sign-in-failed")

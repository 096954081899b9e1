from django.urls import path

from portal.views import audit, dashboards, job_actions, jobs, security, settings

urlpatterns = [
    path("", dashboards.staff_dashboard, name="dashboard"),
    path("jobs/", dashboards.jobs, name="jobs"),
    path("jobs/<uuid:pk>/", jobs.job_detail, name="job"),
    path("jobs/<uuid:pk>/retry/", job_actions.job_retry_view, name="job-retry"),
    path("audit/", audit.audit_list, name="audit"),
    path("audit/<int:pk>/", audit.audit_entry, name="audit-entry"),
    path("jobs/<uuid:pk>/cancel/", job_actions.job_cancel_view, name="job-cancel"),
    path("settings/", settings.settings_page, name="settings"),
    path("two-factor/", security.two_factor, name="two-factor"),
    path("sign-in-lockouts/", security.signin_lockouts, name="signin-lockouts"),
    path("sign-in-lockouts/release/", security.signin_lockout_release, name="signin-lockout-release"),
]

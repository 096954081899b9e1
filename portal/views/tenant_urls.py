from django.urls import path

from portal.views import audit, dashboards, job_actions, jobs

urlpatterns = [
    path("", dashboards.tenant_dashboard, name="dashboard"),
    path("jobs/", dashboards.jobs, name="jobs"),
    path("jobs/<uuid:pk>/", jobs.job_detail, name="job"),
    path("jobs/<uuid:pk>/retry/", job_actions.job_retry_view, name="job-retry"),
    path("audit/", audit.audit_list, name="audit"),
    path("audit/<int:pk>/", audit.audit_entry, name="audit-entry"),
]

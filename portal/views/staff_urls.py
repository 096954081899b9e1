from django.urls import path

from portal.views import dashboards, jobs

urlpatterns = [
    path("", dashboards.staff_dashboard, name="dashboard"),
    path("jobs/", dashboards.jobs, name="jobs"),
    path("jobs/<uuid:pk>/", jobs.job_detail, name="job"),
]

"""The admin portal's URLs. Pages under the `staff` namespace, the API under `staff-api`."""

from django.urls import include, path

from portal import api_urls
from portal.views import auth, jobs, security

# Django reads these names here: JSON error bodies under /api/, the portal's pages elsewhere.
from portal.views.errors import handler400, handler403, handler404, handler500  # noqa: F401

pages = [
    path("", include("portal.views.staff_urls")),
    path("fabric/", include("fabric.urls.staff")),
    path("", include("tenants.urls.staff")),
]

api = [
    path("", include(api_urls.staff_urlpatterns)),
    path("", include("fabric.api.staff_urls")),
    path("", include("tenants.api.staff_urls")),
]

urlpatterns = [
    path("login/", auth.sign_in, name="login"),
    path("login/verify/", security.sign_in_verify, name="login-verify"),
    path("logout/", auth.sign_out, name="logout"),
    path("jobs/status/", jobs.job_statuses, name="job-statuses"),
    path("notifications/", jobs.notifications, name="notifications"),
    *auth.password_urls(),
    path("api/v1/", include((api, "staff-api"))),
    path("", include((pages, "staff"))),
]

"""The tenant portal's URLs. No staff module is included, so no staff URL resolves here."""

from django.urls import include, path

from portal.views import auth, jobs

# Django reads these names here: JSON error bodies under /api/, the portal's pages elsewhere.
from portal.views.errors import handler400, handler403, handler404, handler500  # noqa: F401

pages = [
    path("", include("portal.views.tenant_urls")),
    path("", include("tenants.urls.tenant")),
    path("vms/", include("fabric.urls.tenant")),
]

api = [
    path("", include("portal.api_urls")),
    path("", include("fabric.api.tenant_urls")),
    path("", include("tenants.api.tenant_urls")),
]

urlpatterns = [
    path("login/", auth.SignInView.as_view(), name="login"),
    path("logout/", auth.sign_out, name="logout"),
    path("jobs/status/", jobs.job_statuses, name="job-statuses"),
    path("notifications/", jobs.notifications, name="notifications"),
    path("signup/", auth.SignUpView.as_view(), name="signup"),
    path("verify-email/resend/", auth.verify_email_resend, name="verify-email-resend"),
    path("verify-email/<str:token>/", auth.verify_email, name="verify-email"),
    *auth.password_urls(),
    path("api/v1/", include((api, "tenant-api"))),
    path("", include((pages, "tenant"))),
]

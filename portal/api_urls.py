"""API routes every site has: the OpenAPI schema and jobs (`job-detail` is where 202 answers point).

`urlpatterns` serve the tenant API; `staff_urlpatterns` the staff API, whose jobs can also be cancelled.
The schema is for the site's own accounts, like the rest of the API.
"""

from django.urls import path
from rest_framework.routers import SimpleRouter

from portal import api_views

router = SimpleRouter()
router.register("jobs", api_views.JobViewSet, basename="job")
router.register("audit-entries", api_views.AuditEntryViewSet, basename="audit-entry")
staff_router = SimpleRouter()
staff_router.register("jobs", api_views.StaffJobViewSet, basename="job")
staff_router.register("audit-entries", api_views.StaffAuditEntryViewSet, basename="audit-entry")

schema = path("schema/", api_views.SchemaView.as_view(), name="schema")
urlpatterns = [schema, *router.urls]
staff_urlpatterns = [
    schema,
    path("settings/", api_views.PortalSettingsView.as_view(), name="settings"),
    *staff_router.urls,
]

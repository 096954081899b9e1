"""API routes every site has: the OpenAPI schema and jobs (`job-detail` is where 202 answers point).

`urlpatterns` serve the tenant API; `staff_urlpatterns` the staff API, whose jobs can also be cancelled.
The schema is for the site's own accounts, like the rest of the API.
"""

from typing import Any

from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.routers import SimpleRouter

from portal import api_views
from portal.api import IsSiteAccount

router = SimpleRouter()
router.register("jobs", api_views.JobViewSet, basename="job")
staff_router = SimpleRouter()
staff_router.register("jobs", api_views.StaffJobViewSet, basename="job")


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema, for the site's own accounts like the rest of the API; its refusals are the
    JSON error body, not a YAML document."""

    permission_classes = [IsSiteAccount]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        if response.status_code >= 400:
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


schema = path("schema/", SchemaView.as_view(), name="schema")
urlpatterns = [schema, *router.urls]
staff_urlpatterns = [schema, *staff_router.urls]

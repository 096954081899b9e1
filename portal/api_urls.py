"""API routes every site has: the OpenAPI schema and jobs (`job-detail` is where 202 answers point).

`urlpatterns` serve the tenant API; `staff_urlpatterns` the staff API, whose jobs can also be cancelled.
"""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from portal import api_views

router = SimpleRouter()
router.register("jobs", api_views.JobViewSet, basename="job")
staff_router = SimpleRouter()
staff_router.register("jobs", api_views.StaffJobViewSet, basename="job")

schema = path("schema/", SpectacularAPIView.as_view(), name="schema")
urlpatterns = [schema, *router.urls]
staff_urlpatterns = [schema, *staff_router.urls]

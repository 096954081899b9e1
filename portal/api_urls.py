"""API routes every site has: the OpenAPI schema and jobs (`job-detail` is where 202 answers point)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from portal import api_views

router = SimpleRouter()
router.register("jobs", api_views.JobViewSet, basename="job")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    *router.urls,
]

"""API routes every site has: the OpenAPI schema and job status."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from portal import api_views

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("jobs/<uuid:pk>/", api_views.JobDetail.as_view(), name="job-detail"),
]

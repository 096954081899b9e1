"""Staff API of the fabric: /api/v1/endpoints/, clouds/, plans/{id}/vm-cloud/ (namespace staff-api)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import staff_views

router = SimpleRouter()
router.register("endpoints", staff_views.EndpointViewSet, basename="endpoint")
router.register("clouds", staff_views.CloudViewSet, basename="cloud")

urlpatterns = [
    path("plans/<str:pk>/vm-cloud/", staff_views.PlanVMCloudView.as_view(), name="plan-vm-cloud"),
    *router.urls,
]

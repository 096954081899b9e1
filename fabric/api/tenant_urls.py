"""Tenant API of the fabric: /api/v1/vms/ and /api/v1/subscriptions/{id}/catalog/ (namespace tenant-api)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import tenant_views

router = SimpleRouter()
router.register("vms", tenant_views.VMViewSet, basename="vm")

urlpatterns = [
    path(
        "subscriptions/<str:pk>/catalog/", tenant_views.SubscriptionCatalogView.as_view(), name="subscription-catalog"
    ),
    *router.urls,
]

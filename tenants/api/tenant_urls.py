"""Tenant API of plans and subscriptions (namespace tenant-api)."""

from rest_framework.routers import SimpleRouter

from . import tenant_views

router = SimpleRouter()
router.register("plans", tenant_views.PlanViewSet, basename="plan")
router.register("subscriptions", tenant_views.SubscriptionViewSet, basename="subscription")

urlpatterns = router.urls

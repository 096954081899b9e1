"""Staff API of the fabric: /api/v1/endpoints/, clouds/ (namespace staff-api)."""

from rest_framework.routers import SimpleRouter

from . import staff_views

router = SimpleRouter()
router.register("endpoints", staff_views.EndpointViewSet, basename="endpoint")
router.register("clouds", staff_views.CloudViewSet, basename="cloud")

urlpatterns = router.urls

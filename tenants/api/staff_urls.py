"""Staff API of plans, subscriptions and accounts (namespace staff-api)."""

from rest_framework.routers import SimpleRouter

from . import staff_views

router = SimpleRouter()
router.register("plans", staff_views.PlanViewSet, basename="plan")
router.register("subscriptions", staff_views.SubscriptionViewSet, basename="subscription")
router.register("accounts", staff_views.AccountViewSet, basename="account")
router.register("invitations", staff_views.SignupInvitationViewSet, basename="invitation")

urlpatterns = router.urls

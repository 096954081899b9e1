"""Staff API of plans, add-ons, subscriptions, tenant accounts and staff accounts (namespace staff-api)."""

from rest_framework.routers import SimpleRouter

from . import staff_account_views, staff_views

router = SimpleRouter()
router.register("plans", staff_views.PlanViewSet, basename="plan")
router.register("addons", staff_views.AddOnViewSet, basename="addon")
router.register("subscriptions", staff_views.SubscriptionViewSet, basename="subscription")
router.register("invitations", staff_views.SignupInvitationViewSet, basename="invitation")
router.register("accounts", staff_account_views.AccountViewSet, basename="account")
router.register("staff-accounts", staff_account_views.StaffAccountViewSet, basename="staff-account")
router.register("staff-roles", staff_account_views.StaffRoleViewSet, basename="staff-role")

urlpatterns = router.urls

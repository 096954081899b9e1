"""Admin portal pages of plans, accounts and subscriptions (namespace `staff`)."""

from django.urls import include, path

from tenants.views import staff

urlpatterns = [
    path("plans/", staff.plan_list_page, name="plans"),
    path("plans/new/", staff.plan_create_page, name="plan-create"),
    path("plans/<int:pk>/", staff.plan_detail, name="plan"),
    path("plans/<int:pk>/state/", staff.plan_state_page, name="plan-state"),
    path("accounts/", staff.account_list_page, name="accounts"),
    path("subscriptions/", staff.subscription_list_page, name="subscriptions"),
    path("invitations/", staff.invitation_list_page, name="invitations"),
    path("invitations/<uuid:pk>/revoke/", staff.invitation_revoke_page, name="invitation-revoke"),
    path("subscriptions/new/", staff.subscription_create_page, name="subscription-create"),
    path("subscriptions/<uuid:pk>/", staff.subscription_detail, name="subscription"),
    path("subscriptions/<uuid:pk>/delete/", staff.subscription_delete_page, name="subscription-delete"),
    path("subscriptions/<uuid:pk>/<slug:action>/", staff.subscription_action_page, name="subscription-action"),
    path("", include("tenants.urls.tokens")),
]

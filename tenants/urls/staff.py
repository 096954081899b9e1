"""Admin portal pages of plans, add-ons, accounts and subscriptions (namespace `staff`)."""

from django.urls import include, path

from tenants.views import staff, staff_accounts

urlpatterns = [
    path("plans/", staff.plan_list_page, name="plans"),
    path("plans/new/", staff.plan_create_page, name="plan-create"),
    path("plans/<int:pk>/", staff.plan_detail, name="plan"),
    path("plans/<int:pk>/edit/", staff.plan_edit_page, name="plan-edit"),
    path("plans/<int:pk>/state/", staff.plan_state_page, name="plan-state"),
    path("plans/<int:pk>/clone/", staff.plan_clone_page, name="plan-clone"),
    path("plans/<int:pk>/invitation/", staff.plan_invitation_page, name="plan-invitation"),
    path("plans/<int:pk>/services/<slug:service>/", staff.plan_service_page, name="plan-service"),
    path("plans/<int:pk>/services/<slug:service>/remove/", staff.plan_service_remove_page, name="plan-service-remove"),
    path("addons/", staff.addon_list_page, name="addons"),
    path("addons/new/", staff.addon_form_page, name="addon-create"),
    path("addons/<int:pk>/", staff.addon_form_page, name="addon"),
    path("addons/<int:pk>/state/", staff.addon_state_page, name="addon-state"),
    path("accounts/", staff_accounts.account_list_page, name="accounts"),
    path("accounts/<int:pk>/", staff_accounts.account_detail, name="account"),
    path("accounts/<int:pk>/lock/", staff_accounts.account_lock_page, name="account-lock"),
    path("accounts/<int:pk>/unlock/", staff_accounts.account_unlock_page, name="account-unlock"),
    path("accounts/<int:pk>/reset-password/", staff_accounts.account_password_reset_page, name="account-password"),
    path("accounts/<int:pk>/delete/", staff_accounts.account_delete_page, name="account-delete"),
    path("staff-accounts/", staff_accounts.staff_account_list_page, name="staff-accounts"),
    path("staff-accounts/new/", staff_accounts.staff_account_create_page, name="staff-account-create"),
    path("staff-accounts/<int:pk>/role/", staff_accounts.staff_account_role_page, name="staff-account-role"),
    path(
        "staff-accounts/<int:pk>/deactivate/",
        staff_accounts.staff_account_deactivate_page,
        name="staff-account-deactivate",
    ),
    path(
        "staff-accounts/<int:pk>/activate/", staff_accounts.staff_account_activate_page, name="staff-account-activate"
    ),
    path(
        "staff-accounts/<int:pk>/reset-two-factor/",
        staff_accounts.staff_account_two_factor_reset_page,
        name="staff-account-two-factor-reset",
    ),
    path("subscriptions/", staff.subscription_list_page, name="subscriptions"),
    path("invitations/", staff.invitation_list_page, name="invitations"),
    path("invitations/<uuid:pk>/revoke/", staff.invitation_revoke_page, name="invitation-revoke"),
    path("subscriptions/new/", staff.subscription_create_page, name="subscription-create"),
    path("subscriptions/<uuid:pk>/", staff.subscription_detail, name="subscription"),
    path("subscriptions/<uuid:pk>/delete/", staff.subscription_delete_page, name="subscription-delete"),
    path("subscriptions/<uuid:pk>/change-plan/", staff.subscription_change_plan_page, name="subscription-change-plan"),
    path("subscriptions/<uuid:pk>/<slug:action>/", staff.subscription_action_page, name="subscription-action"),
    path("", include("tenants.urls.tokens")),
]

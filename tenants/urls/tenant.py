"""Tenant plan catalog and subscriptions, in the tenant site's `tenant` namespace."""

from django.urls import include, path

from tenants.views import tenant as views

urlpatterns = [
    path("plans/", views.plans, name="plans"),
    path("plans/join/", views.plan_join, name="plan-join"),
    path("plans/<int:pk>/subscribe/", views.plan_subscribe, name="plan-subscribe"),
    path("subscriptions/", views.subscriptions, name="subscriptions"),
    path("subscriptions/<uuid:pk>/co-administrators/", views.subscription_coadmins, name="subscription-coadmins"),
    path(
        "subscriptions/<uuid:pk>/co-administrators/<uuid:coadmin_pk>/remove/",
        views.subscription_coadmin_remove,
        name="subscription-coadmin-remove",
    ),
    path("subscriptions/<uuid:pk>/cancel/", views.subscription_cancel_page, name="subscription-cancel"),
    path("subscriptions/<uuid:pk>/", views.subscription_detail, name="subscription"),
    path(
        "subscriptions/<uuid:pk>/addons/<int:addon_pk>/buy/",
        views.subscription_addon_buy_page,
        name="subscription-addon-buy",
    ),
    path(
        "subscriptions/<uuid:pk>/addons/<int:addon_pk>/remove/",
        views.subscription_addon_remove_page,
        name="subscription-addon-remove",
    ),
    path("", include("tenants.urls.tokens")),
]

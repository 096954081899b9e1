"""Tenant plan catalog and subscriptions, in the tenant site's `tenant` namespace."""

from django.urls import include, path

from tenants.views import tenant as views

urlpatterns = [
    path("plans/", views.plans, name="plans"),
    path("plans/<int:pk>/subscribe/", views.plan_subscribe, name="plan-subscribe"),
    path("subscriptions/", views.subscriptions, name="subscriptions"),
    path("subscriptions/<uuid:pk>/co-administrators/", views.subscription_coadmins, name="subscription-coadmins"),
    path(
        "subscriptions/<uuid:pk>/co-administrators/<uuid:coadmin_pk>/remove/",
        views.subscription_coadmin_remove,
        name="subscription-coadmin-remove",
    ),
    path("subscriptions/<uuid:pk>/cancel/", views.subscription_cancel_page, name="subscription-cancel"),
    path("", include("tenants.urls.tokens")),
]

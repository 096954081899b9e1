"""Tenant plan catalog and subscriptions, in the tenant site's `tenant` namespace."""

from django.urls import include, path

from tenants.views import tenant as views

urlpatterns = [
    path("plans/", views.plans, name="plans"),
    path("plans/<int:pk>/subscribe/", views.plan_subscribe, name="plan-subscribe"),
    path("subscriptions/", views.subscriptions, name="subscriptions"),
    path("", include("tenants.urls.tokens")),
]

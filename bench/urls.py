"""The tenant URLconf plus the bench's reference views (never part of the product)."""

from django.urls import include, path

from bench import views

urlpatterns = [
    path("bench/floor/vms/", views.floor_vm_list, name="bench-floor-vms"),
    path("bench/minimal/", views.minimal, name="bench-minimal"),
    path("bench/auth/session/", views.session_probe, name="bench-auth-session"),
    path("bench/auth/token/", views.token_probe, name="bench-auth-token"),
    path("bench/auth/basic/", views.basic_probe, name="bench-auth-basic"),
    path("", include("portal.urls.tenant")),
]

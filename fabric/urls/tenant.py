"""Tenant VM pages, mounted at vms/ in the tenant site's `tenant` namespace."""

from django.urls import path

from fabric.views import tenant as views

urlpatterns = [
    path("", views.vm_list_page, name="vms"),
    path("new/", views.vm_create_page, name="vm-create"),
    path("actions/", views.vm_bulk_action, name="vm-bulk-action"),
    path("status/", views.vm_statuses, name="vm-statuses"),
    path("<uuid:pk>/", views.vm_detail, name="vm"),
    path("<uuid:pk>/delete/", views.vm_delete_confirm, name="vm-delete"),
    path("<uuid:pk>/actions/<slug:action>/", views.vm_action_view, name="vm-action"),
]

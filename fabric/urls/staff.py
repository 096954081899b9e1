"""Admin portal pages of the fabric, mounted at `fabric/` in the `staff` namespace."""

from django.urls import path

from fabric.views import staff

urlpatterns = [
    path("", staff.endpoint_list_page, name="endpoints"),
    path("endpoints/new/", staff.endpoint_create, name="endpoint-create"),
    path("endpoints/<int:pk>/", staff.endpoint_detail, name="endpoint"),
    path("endpoints/<int:pk>/sync/", staff.endpoint_sync_page, name="endpoint-sync"),
]

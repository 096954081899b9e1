"""Admin portal pages of the fabric: endpoints with their stamps, clouds and capacity.

Views parse input and call fabric.services / fabric.selectors; a driver is never called from here
(registering and synchronizing start jobs).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST

from fabric.forms_staff import EndpointRegisterForm
from fabric.models import FabricEndpoint
from fabric.selectors import endpoint_get, endpoint_last_job, endpoint_list
from fabric.services import endpoint_register, endpoint_sync
from portal.access import Capability, capability_required
from portal.exceptions import ServiceError
from portal.forms import apply_service_error

# The staff URLconf is only served by the admin site, where only staff accounts can sign in; this
# check is the second lock, so a staff view mounted by mistake elsewhere still refuses tenants.


def _get_endpoint(pk: int) -> FabricEndpoint:
    try:
        return endpoint_get(pk=pk)
    except FabricEndpoint.DoesNotExist as exc:
        raise Http404 from exc


@capability_required(Capability.VIEW)
def endpoint_list_page(request: HttpRequest) -> HttpResponse:
    page = Paginator(endpoint_list(), 50).get_page(request.GET.get("page"))
    return render(request, "staff/fabric/endpoint_list.html", {"page": page, "endpoints": page.object_list})


@capability_required(Capability.ADMINISTER)
@require_http_methods(["GET", "POST"])
def endpoint_create(request: HttpRequest) -> HttpResponse:
    form = EndpointRegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, _job = endpoint_register(
                name=form.cleaned_data["name"],
                driver=form.cleaned_data["driver"],
                settings_=form.cleaned_data["settings"],
                created_by=request.user,
            )
        except (ValidationError, ServiceError) as exc:
            apply_service_error(form, exc)
        else:
            messages.success(request, f"Endpoint '{endpoint}' registered; reading its fabric.")
            return redirect("staff:endpoint", pk=endpoint.pk)
    return render(request, "staff/fabric/endpoint_form.html", {"form": form})


@capability_required(Capability.VIEW)
def endpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The endpoint's page. An htmx request (sent when its sync job ends) gets only the fabric section."""
    endpoint = _get_endpoint(pk)
    template = "staff/fabric/endpoint_detail.html"
    if request.htmx:
        template += "#endpoint-fabric"
    response = render(request, template, {"endpoint": endpoint, "job": endpoint_last_job(endpoint)})
    patch_vary_headers(response, ["HX-Request"])
    return response


# Operate, not administer: a sync changes no setting, it reads what the fabric has now.
@capability_required(Capability.OPERATE)
@require_POST
def endpoint_sync_page(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _get_endpoint(pk)
    try:
        endpoint_sync(endpoint=endpoint, created_by=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Synchronizing '{endpoint}'.")
    return redirect("staff:endpoint", pk=endpoint.pk)

"""The admin portal's settings page: provider settings kept in the database (portal.models.PortalSettings)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from portal.access import Capability, capability_required
from portal.forms import PortalSettingsForm, apply_service_error
from portal.selectors import portal_settings_get
from portal.services import portal_settings_update


@capability_required(Capability.ADMINISTER)
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest) -> HttpResponse:
    """Who may sign up on the tenant portal: a setting, so administrators only."""
    current = portal_settings_get()
    form = PortalSettingsForm(request.POST or None, initial={"signup_policy": current.signup_policy})
    if request.method == "POST" and form.is_valid():
        try:
            portal_settings_update(by=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_service_error(form, exc)
        else:
            messages.success(request, "Settings saved.")
            return redirect("staff:settings")
    return render(request, "staff/settings.html", {"form": form, "current": current})

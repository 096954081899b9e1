"""The "API tokens" page of both portals (each URLconf includes it under its own namespace).

The clear token is in the one response that creates it (not stored, not in the session, never
cached); afterwards only its prefix shows.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from portal.access import Capability, capability_required
from portal.exceptions import ServiceError
from portal.forms import apply_service_error
from tenants.forms import TokenCreateForm
from tenants.models import APIToken
from tenants.selectors import token_get, token_list
from tenants.services import token_create, token_revoke

PAGE_SIZE = 50


def _namespace(request: HttpRequest) -> str:
    return request.resolver_match.namespace if request.resolver_match else ""


# Personal: any staff role manages its own tokens.
@never_cache
@capability_required(Capability.VIEW, tenants=True)
@require_http_methods(["GET", "POST"])
def token_list_page(request: HttpRequest) -> HttpResponse:
    """The account's tokens with the create form; a valid POST answers this page with the new token."""
    form = TokenCreateForm(request.POST or None)
    created: tuple[APIToken, str] | None = None
    if request.method == "POST" and form.is_valid():
        try:
            created = token_create(user=request.user, **form.cleaned_data)  # type: ignore[arg-type]  # login_required
        except (ValidationError, ServiceError) as exc:
            apply_service_error(form, exc)
        else:
            form = TokenCreateForm()
    page = Paginator(token_list(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    context: dict[str, Any] = {"page": page, "tokens": page.object_list, "form": form, "created": created}
    return render(request, "components/token_list_page.html", context, status=201 if created else 200)


@capability_required(Capability.VIEW, tenants=True)
@require_POST
def token_revoke_page(request: HttpRequest, pk: Any) -> HttpResponse:
    try:
        token = token_get(user=request.user, pk=pk)
    except (APIToken.DoesNotExist, ValidationError) as exc:
        raise Http404("No such token.") from exc
    token_revoke(token=token)
    messages.success(request, f"Token '{token.name}' revoked: requests with it are refused from now on.")
    return redirect(f"{_namespace(request)}:tokens")

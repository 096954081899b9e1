"""Admin portal pages of tenant accounts (list, search, page, lock, password reset, delete) and of
staff accounts and their roles.

Reading accounts is for every staff role; changing one (tenant or staff) is an account change,
administrators only (portal.access).
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

from portal.access import Capability, StaffRole, capability_required
from portal.exceptions import ServiceError
from portal.forms import apply_service_error, error_message
from portal.services import totp_devices_remove
from tenants.forms_staff import StaffAccountCreateForm, StaffRoleForm
from tenants.models import User
from tenants.selectors import account_get, account_list, staff_account_get, staff_account_list, subscription_list
from tenants.services import (
    account_delete,
    account_lock,
    account_password_reset,
    account_unlock,
    staff_account_activate,
    staff_account_create,
    staff_account_deactivate,
    staff_role_set,
    staff_set_password_link_send,
)

PAGE_SIZE = 50


def _account(request: HttpRequest, pk: int) -> User:
    try:
        return account_get(user=request.user, pk=pk)
    except User.DoesNotExist as exc:
        raise Http404("No such account.") from exc


def _staff_account(request: HttpRequest, pk: int) -> User:
    try:
        return staff_account_get(user=request.user, pk=pk)
    except User.DoesNotExist as exc:
        raise Http404("No such staff account.") from exc


@capability_required(Capability.VIEW)
def account_list_page(request: HttpRequest) -> HttpResponse:
    """Tenant accounts, searched by part of the email address or name (`?q=`), 50 a page."""
    query = request.GET.get("q", "").strip()[:100]
    page = Paginator(account_list(user=request.user, search=query), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "accounts": page.object_list, "q": query}
    return render(request, "staff/tenants/account_list.html", context)


@capability_required(Capability.VIEW)
def account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The account with its subscriptions (deleted ones included: they are its history)."""
    account = _account(request, pk)
    subscriptions = subscription_list(user=request.user).filter(owner=account).order_by("-created_at", "pk")
    page = Paginator(subscriptions, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"account": account, "page": page, "subscriptions": page.object_list}
    return render(request, "staff/tenants/account_detail.html", context)


def _account_action(
    request: HttpRequest, pk: int, act: Any, done: str, *, get: Any = None, back: str = ""
) -> HttpResponse:
    """Run one service on an account (`get` finds it, 404 otherwise) and go back with its outcome:
    to `back` (a list's URL name), or by default to the account's page."""
    account = (get or _account)(request, pk)
    try:
        act(account=account)
    except (ServiceError, ValidationError) as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(request, done.format(account=account.email))
    return redirect(back) if back else redirect("staff:account", pk=pk)


@capability_required(Capability.ADMINISTER)
@require_POST
def account_lock_page(request: HttpRequest, pk: int) -> HttpResponse:
    return _account_action(request, pk, account_lock, "{account} is locked: it can't sign in, and its sessions end.")


@capability_required(Capability.ADMINISTER)
@require_POST
def account_unlock_page(request: HttpRequest, pk: int) -> HttpResponse:
    return _account_action(request, pk, account_unlock, "{account} is unlocked: it can sign in again.")


@never_cache
@capability_required(Capability.ADMINISTER)
@require_POST
def account_password_reset_page(request: HttpRequest, pk: int) -> HttpResponse:
    """Set a temporary password and show it in this one answer (never stored in clear, never cached)."""
    account = _account(request, pk)
    try:
        password = account_password_reset(account=account)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("staff:account", pk=pk)
    return render(request, "staff/tenants/account_password.html", {"account": account, "password": password})


@capability_required(Capability.ADMINISTER)
@require_POST
def account_delete_page(request: HttpRequest, pk: int) -> HttpResponse:
    account = _account(request, pk)
    try:
        account_delete(account=account)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("staff:account", pk=pk)
    messages.success(request, f"Account {account.email} deleted.")
    return redirect("staff:accounts")


# --- staff accounts ----------------------------------------------------------------------------------


@capability_required(Capability.ADMINISTER)
def staff_account_list_page(request: HttpRequest) -> HttpResponse:
    page = Paginator(staff_account_list(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "accounts": page.object_list, "roles": StaffRole.choices}
    return render(request, "staff/tenants/staff_account_list.html", context)


@capability_required(Capability.ADMINISTER)
@require_http_methods(["GET", "POST"])
def staff_account_create_page(request: HttpRequest) -> HttpResponse:
    form = StaffAccountCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            account = staff_account_create(
                email=data["email"], full_name=data["full_name"], role=data["role"], password=data["password"] or None
            )
        except (ValidationError, ServiceError) as exc:
            apply_service_error(form, exc)
        else:
            if data["password"]:
                messages.success(request, f"Staff account {account.email} created.")
            else:
                if staff_set_password_link_send(account=account, site_url=request.build_absolute_uri("/")):
                    messages.success(
                        request, f"Staff account {account.email} created; a set-password link was emailed."
                    )
                else:
                    messages.warning(
                        request,
                        f"Staff account {account.email} created, but the set-password link couldn't be mailed: "
                        "it can use Forgot your password? on the sign-in page.",
                    )
            return redirect("staff:staff-accounts")
    return render(request, "staff/tenants/staff_account_form.html", {"form": form})


@capability_required(Capability.ADMINISTER)
@require_POST
def staff_account_role_page(request: HttpRequest, pk: int) -> HttpResponse:
    account = _staff_account(request, pk)
    form = StaffRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role.")
        return redirect("staff:staff-accounts")
    try:
        staff_role_set(account=account, role=form.cleaned_data["role"])
    except (ServiceError, ValidationError) as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(request, f"{account.email} is now {account.get_staff_role_display().lower()}.")
    return redirect("staff:staff-accounts")


@capability_required(Capability.ADMINISTER)
@require_POST
def staff_account_deactivate_page(request: HttpRequest, pk: int) -> HttpResponse:
    return _account_action(
        request,
        pk,
        staff_account_deactivate,
        "{account} is deactivated: it can't sign in, and its sessions end.",
        get=_staff_account,
        back="staff:staff-accounts",
    )


@capability_required(Capability.ADMINISTER)
@require_POST
def staff_account_two_factor_reset_page(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove a staff account's TOTP device (a lost phone): it enrols again after its next sign-in."""
    account = _staff_account(request, pk)
    totp_devices_remove(user=account)
    messages.success(request, f"Two-factor sign-in of {account.email} reset: it enrols a new app at its next sign-in.")
    return redirect("staff:staff-accounts")


@capability_required(Capability.ADMINISTER)
@require_POST
def staff_account_activate_page(request: HttpRequest, pk: int) -> HttpResponse:
    return _account_action(
        request,
        pk,
        staff_account_activate,
        "{account} can sign in again.",
        get=_staff_account,
        back="staff:staff-accounts",
    )

"""The audit log's pages, in both portals: a filterable list in keyset pages and an entry's page with
its before/after. What a user sees is the access rule's (staff: every entry; a tenant: its
subscriptions' and its own)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from portal.access import Capability, capability_required
from portal.filters import AuditEntryFilter, audit_filter_form_widgets
from portal.models import AuditEntry
from portal.pagination import cursor_page
from portal.selectors import audit_entry_get, audit_entry_list


@capability_required(Capability.VIEW, tenants=True)
@require_safe
def audit_list(request: HttpRequest) -> HttpResponse:
    """Newest first, one keyset page at a time, narrowed by the filter form (an invalid filter shows
    its error and no entry rather than every entry)."""
    params = request.GET.copy()
    params.pop("cursor", None)
    filterset = AuditEntryFilter(params or None, queryset=audit_entry_list(user=request.user))
    audit_filter_form_widgets(filterset.form)
    valid = not filterset.is_bound or filterset.is_valid()
    entries = filterset.qs if valid else AuditEntry.objects.none()
    page = cursor_page(request, entries)
    context = {
        "page": page,
        "entries": page.object_list,
        "form": filterset.form,
        "filtered": bool(params),
        "staff_view": settings.CANOPY_SITE == "staff",
    }
    return render(request, "components/audit_list_page.html", context)


@capability_required(Capability.VIEW, tenants=True)
@require_safe
def audit_entry(request: HttpRequest, pk: Any) -> HttpResponse:
    try:
        entry = audit_entry_get(user=request.user, pk=pk)
    except AuditEntry.DoesNotExist as exc:
        raise Http404 from exc
    changes = [(name, values[0], values[1]) for name, values in sorted(entry.changes.items())]
    context = {"entry": entry, "changes": changes, "staff_view": settings.CANOPY_SITE == "staff"}
    return render(request, "components/audit_entry_page.html", context)

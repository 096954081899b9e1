"""The audit log's filters, one FilterSet for the pages (its form) and the APIs (django-filter's backend).

Every filter is one the table's indexes serve (portal.models.AuditEntry.Meta.indexes): the actor's
email, the subscription, the action (exact, or a prefix ending with a dot: `vm.`), the object, the
outcome, the request id and a range of days (UTC, whole days, compared with the row's database time).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django_filters import rest_framework as filters

from portal.models import AuditEntry, AuditOutcome


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


class AuditEntryFilter(filters.FilterSet):
    q = filters.CharFilter(method="search", label="Search", help_text="words in the object, actor or action")
    actor = filters.CharFilter(method="by_actor", label="Actor", help_text="the actor's email, 'system' or 'anonymous'")
    subscription = filters.UUIDFilter(field_name="subscription_id", label="Subscription id")
    action = filters.CharFilter(
        method="by_action", label="Action", help_text="e.g. vm.start, or vm. for every VM action"
    )
    object_type = filters.CharFilter(
        field_name="object_type", label="Object type", help_text="e.g. fabric.virtualmachine"
    )
    object_id = filters.CharFilter(field_name="object_id", label="Object id")
    outcome = filters.ChoiceFilter(choices=AuditOutcome.choices, label="Outcome")
    since = filters.DateFilter(method="by_since", label="From", help_text="first day (UTC), inclusive")
    until = filters.DateFilter(method="by_until", label="To", help_text="last day (UTC), inclusive")
    request_id = filters.CharFilter(field_name="request_id", label="Request id")

    class Meta:
        model = AuditEntry
        fields: list[str] = []

    def search(self, queryset: QuerySet[AuditEntry], name: str, value: str) -> QuerySet[AuditEntry]:
        for word in value.split()[:5]:
            queryset = queryset.filter(
                Q(object_repr__icontains=word) | Q(actor_label__icontains=word) | Q(action__icontains=word)
            )
        return queryset

    def by_actor(self, queryset: QuerySet[AuditEntry], name: str, value: str) -> QuerySet[AuditEntry]:
        return queryset.filter(actor_label=value.strip().lower())

    def by_action(self, queryset: QuerySet[AuditEntry], name: str, value: str) -> QuerySet[AuditEntry]:
        value = value.strip()
        return queryset.filter(action__startswith=value) if value.endswith(".") else queryset.filter(action=value)

    def by_since(self, queryset: QuerySet[AuditEntry], name: str, value: date) -> QuerySet[AuditEntry]:
        return queryset.filter(created_at__gte=_midnight(value))

    def by_until(self, queryset: QuerySet[AuditEntry], name: str, value: date) -> QuerySet[AuditEntry]:
        return queryset.filter(created_at__lt=_midnight(value + timedelta(days=1)))


def audit_filter_form_widgets(form: forms.Form) -> Any:
    """Date inputs for the range (the page's filter form)."""
    for name in ("since", "until"):
        form.fields[name].widget = forms.DateInput(attrs={"type": "date"})
    return form

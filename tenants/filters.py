"""Filters of the staff subscription list, shared by its page and its API (django-filter)."""

from __future__ import annotations

from typing import Any

from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast
from django_filters import rest_framework as filters

from .models import Plan, Subscription, SubscriptionState, SyncState


def _plans(request: Any) -> QuerySet[Plan]:
    return Plan.objects.visible_to(getattr(request, "user", None)).order_by("name")


class SubscriptionFilter(filters.FilterSet):
    """Search (name, id, owner's email or name), plan, state, owner and sync state."""

    search = filters.CharFilter(method="filter_search", label="Search")
    plan = filters.ModelChoiceFilter(queryset=_plans, label="Plan", empty_label="Any plan")
    state = filters.ChoiceFilter(choices=SubscriptionState.choices, label="State", empty_label="Any state")
    owner = filters.CharFilter(
        field_name="owner__email", lookup_expr="iexact", label="Owner's email", help_text="the account's email"
    )
    sync_state = filters.ChoiceFilter(choices=SyncState.choices, label="Sync state", empty_label="Any sync state")
    # OVER QUOTA: the plan-service registry (branch `plans`) provides the "over quota" selector;
    # the lead wires it here as a boolean filter (`over_quota`) at merge.

    class Meta:
        model = Subscription
        fields = ["search", "plan", "state", "owner", "sync_state"]

    def filter_search(self, queryset: QuerySet[Subscription], name: str, value: str) -> QuerySet[Subscription]:
        value = value.strip()
        if not value:
            return queryset
        match = Q(name__icontains=value) | Q(owner__email__icontains=value) | Q(owner__full_name__icontains=value)
        if len(value) >= 8 and all(c in "0123456789abcdef-" for c in value.lower()):
            # The start of an id, as the list shows it (a UUID compared as text).
            queryset = queryset.annotate(id_text=Cast("id", CharField()))
            match |= Q(id_text__startswith=value.lower())
        return queryset.filter(match)

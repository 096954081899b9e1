"""Filters of the staff subscription list, shared by its page and its API (django-filter)."""

from __future__ import annotations

from typing import Any

from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast
from django_filters import rest_framework as filters

from .models import Plan, Subscription, SubscriptionState, SyncState
from .plan_services import over_quota_ids


def _plans(request: Any) -> QuerySet[Plan]:
    return Plan.objects.visible_to(getattr(request, "user", None)).order_by("name")


class SubscriptionFilter(filters.FilterSet):
    """Search (name, id, owner's email or name), plan, state, owner, sync state and over quota."""

    search = filters.CharFilter(method="filter_search", label="Search")
    plan = filters.ModelChoiceFilter(queryset=_plans, label="Plan", empty_label="Any plan")
    state = filters.ChoiceFilter(choices=SubscriptionState.choices, label="State", empty_label="Any state")
    owner = filters.CharFilter(
        field_name="owner__email", lookup_expr="iexact", label="Owner's email", help_text="the account's email"
    )
    sync_state = filters.ChoiceFilter(choices=SyncState.choices, label="Sync state", empty_label="Any sync state")
    over_quota = filters.ChoiceFilter(
        choices=[("true", "Over quota"), ("false", "Within quota")],
        method="filter_over_quota",
        label="Quota use",
        empty_label="Any quota use",
        help_text="over quota: use above a quota lowered under it",
    )

    class Meta:
        model = Subscription
        fields = ["search", "plan", "state", "owner", "sync_state", "over_quota"]

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

    def filter_over_quota(self, queryset: QuerySet[Subscription], name: str, value: str) -> QuerySet[Subscription]:
        """Over-quota is use against live limits, not a column: counted by the plan-service registry
        for the (already filtered) subscriptions in a fixed number of queries, then kept or left out."""
        if value not in ("true", "false"):
            return queryset
        ids = over_quota_ids(queryset.select_related(None).only("pk", "plan_id"))
        return queryset.filter(pk__in=ids) if value == "true" else queryset.exclude(pk__in=ids)

"""The one access rule and the one role check.

Every model a user can see has a queryset built on `ScopedQuerySet`, whose `visible_to(user)` is
written once here: anonymous users see nothing, staff see everything (`staff_scope`, e.g. all VMs
that aren't deleted), tenants see what their model's `tenant_scope` allows (by default nothing: the
fabric itself is the provider's). Rows that belong to a subscription (jobs, state histories, VMs)
scope through `SubscriptionScopedQuerySet`, which asks the tenants app which subscriptions the user
may see: `portal` doesn't import the apps; `tenants` registers the rule when it starts.

`is_staff(user)` is the role check; `staff_required` guards the admin portal's views. The plans
issue refines staff into roles (administrator, operator) here, in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Self, TypeVar

from django.contrib.auth.decorators import user_passes_test
from django.db import models

M = TypeVar("M", bound=models.Model)

_subscription_ids: Callable[[Any], list[Any]] | None = None


def is_staff(user: Any) -> bool:
    """Provider staff: a signed-in account of the admin portal."""
    return bool(getattr(user, "is_authenticated", False) and user.is_staff)


staff_required: Callable[..., Any] = user_passes_test(is_staff)


def register_subscription_scope(visible_ids: Callable[[Any], list[Any]]) -> None:
    """Set how a tenant's visible subscription ids are read (the tenants app does, when it starts)."""
    global _subscription_ids
    _subscription_ids = visible_ids


def visible_subscription_ids(user: Any) -> list[Any]:
    """The ids of the subscriptions a tenant may see, read now. Scoped lists filter on these
    constants (`subscription_id IN (...)`), which PostgreSQL matches to the (subscription, newest
    first) indexes; `IN (subquery)` made it read and sort every row instead."""
    if _subscription_ids is None:
        raise RuntimeError("no subscription scope registered (is the tenants app installed?)")
    return _subscription_ids(user)


class ScopedQuerySet(models.QuerySet[M]):
    """A queryset with the access rule: `visible_to(user)` is where every read by a user starts."""

    def visible_to(self, user: Any) -> Self:
        if not getattr(user, "is_authenticated", False):
            return self.none()
        if user.is_staff:
            return self.staff_scope()
        return self.tenant_scope(user)

    def staff_scope(self) -> Self:
        """What staff see: everything, unless a model hides rows from everyone (e.g. deleted VMs)."""
        return self.all()

    def tenant_scope(self, user: Any) -> Self:
        """What a tenant sees: nothing unless the model says otherwise."""
        return self.none()


class OwnedQuerySet(ScopedQuerySet[M]):
    """Personal rows (e.g. API tokens, credentials): everyone sees only their own, staff included;
    the exception to "staff see everything", made here rather than by hand in a selector."""

    owner_field = "user"

    def visible_to(self, user: Any) -> Self:
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(**{self.owner_field: user})


class SubscriptionScopedQuerySet(ScopedQuerySet[M]):
    """Rows with a `subscription`: a tenant sees those of the subscriptions it may see."""

    def tenant_scope(self, user: Any) -> Self:
        return self.filter(subscription_id__in=visible_subscription_ids(user))

"""The one access rule and the one role check.

Every model a user can see has a queryset built on `ScopedQuerySet`, whose `visible_to(user)` is
written once here: anonymous users see nothing, staff see everything (`staff_scope`, e.g. all VMs
that aren't deleted), tenants see what their model's `tenant_scope` allows (by default nothing: the
fabric itself is the provider's). Rows that belong to a subscription (jobs, state histories, VMs)
scope through `SubscriptionScopedQuerySet`, which asks the tenants app which subscriptions the user
may see: `portal` doesn't import the apps; `tenants` registers the rule when it starts.

Staff roles are decided here too, by one check, `has_capability(user, capability)`:

- an **administrator** may do everything (`view`, `operate`, `administer`);
- an **operator** reads everything (`view`) and runs resource and subscription actions (`operate`:
  VM actions, job cancel and retry, endpoint sync, subscription suspend/activate/delete/re-sync), but
  may not change plans, add-ons, staff accounts, tenant accounts (lock, unlock, password reset,
  delete: those are account changes, not resource actions), what a tenant bought (creating a
  subscription for an account, changing its plan), the fabric's endpoints and clouds, sign-in
  lockouts or settings (`administer`).

Pages both sites route (jobs, API tokens, password change) declare `tenants=True`; personal pages
(API tokens, two-factor sign-in, password change) are `view`, so every staff role manages its own.

Every admin portal page and API action *declares* the capability it needs, per view (not per HTTP
method: an operator can't even open the plan editor): pages with `@capability_required(...)`,
viewsets with a `capabilities = {action: capability}` mapping and plain API views with `capability =
...`, checked by `portal.api.IsStaff`. tests/architecture/test_staff_roles.py walks the staff
URLconf and fails for any route that declares nothing. A page still guarded by the older
`staff_required` (or an API action that declares nothing) is for administrators only: undeclared
means closed, never open to operators.

`portal` reads the role duck-typed (`user.staff_role`, a field of the account model), so it doesn't
import the tenants app.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Self, TypeVar

from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse

M = TypeVar("M", bound=models.Model)

_subscription_ids: Callable[[Any], list[Any]] | None = None


def is_staff(user: Any) -> bool:
    """Provider staff: a signed-in account of the admin portal."""
    return bool(getattr(user, "is_authenticated", False) and user.is_staff)


class Capability(StrEnum):
    """What a staff page or API action needs (see the module docstring)."""

    VIEW = "view"
    OPERATE = "operate"
    ADMINISTER = "administer"


class StaffRole(models.TextChoices):
    """The role of a staff account (`User.staff_role`; tenants have none)."""

    ADMINISTRATOR = "administrator", "Administrator"
    OPERATOR = "operator", "Operator"


ROLE_CAPABILITIES: Mapping[str, frozenset[Capability]] = {
    StaffRole.ADMINISTRATOR: frozenset(Capability),
    StaffRole.OPERATOR: frozenset({Capability.VIEW, Capability.OPERATE}),
}


def staff_role(user: Any) -> str:
    """The staff account's role, "" for tenants, anonymous users and staff without one."""
    return str(getattr(user, "staff_role", "") or "") if is_staff(user) else ""


def has_capability(user: Any, capability: Capability | str) -> bool:
    """The one role check: a staff account whose role grants `capability`. A staff account without a
    known role may do nothing (closed by default)."""
    return is_staff(user) and Capability(capability) in ROLE_CAPABILITIES.get(staff_role(user), frozenset())


def refusal(user: Any, capability: Capability | str) -> str:
    """Why the role check said no, for the 403 page and the API's error body."""
    role = staff_role(user)
    need = "administrators" if Capability(capability) == Capability.ADMINISTER else "administrators and operators"
    return f"Only {need} may do this; your account's role is {role or 'none'}."


def capability_required(capability: Capability, *, tenants: bool = False) -> Callable[[Any], Any]:
    """Declare and enforce what a page needs: anonymous users go to sign in, staff without the
    capability get 403. `tenants=True` for views both sites route (jobs, API tokens): tenant accounts
    pass, and what they see is decided by `visible_to`; otherwise only staff accounts may enter.

    The capability is set on the view (`view.capability`), where the generated role test reads it.
    """
    capability = Capability(capability)

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            # Imported here: auth.views imports the account model, whose app imports this module.
            from django.contrib.auth.views import redirect_to_login

            user = request.user
            if not getattr(user, "is_authenticated", False) or not (tenants or is_staff(user)):
                return redirect_to_login(request.get_full_path())
            if is_staff(user) and not has_capability(user, capability):
                raise PermissionDenied(refusal(user, capability))
            return view(request, *args, **kwargs)

        guarded.capability = capability  # type: ignore[attr-defined]
        return guarded

    return decorator


def public(view: Callable[..., Any]) -> Callable[..., Any]:
    """Declare a route open without signing in (sign-in, its second step, sign-out)."""
    view.public = True  # type: ignore[attr-defined]
    return view


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The admin portal's guard before roles: now administrators only, and *undeclared*, so the
    generated role test names the view until it declares its capability with `capability_required`."""
    guarded = capability_required(Capability.ADMINISTER)(view)
    del guarded.capability  # type: ignore[attr-defined]
    return guarded


def view_capability(view: Any) -> Capability | None:
    """What a DRF view declares for the request it handles: a viewset per action (`capabilities`,
    OPTIONS being a read), another API view once (`capability`). None: nothing declared."""
    if hasattr(view, "action"):
        if view.action == "metadata":
            return Capability.VIEW
        return getattr(view, "capabilities", {}).get(view.action)
    return getattr(view, "capability", None)


def route_capabilities(callback: Any) -> dict[str, Capability | None] | None:
    """What a resolved route's view declares per HTTP method (None: a public route), read off the
    callable the URLconf holds; the generated role test's view of `view_capability`."""
    if getattr(callback, "public", False):
        return None
    methods = ("get", "post", "put", "patch", "delete")
    cls = getattr(callback, "cls", None)
    if cls is None:
        return {method: getattr(callback, "capability", None) for method in methods}
    actions = getattr(callback, "actions", None)
    if actions is not None:
        declared = getattr(cls, "capabilities", {})
        return {method: declared.get(action) for method, action in actions.items() if method in methods}
    return {method: getattr(cls, "capability", None) for method in methods if hasattr(cls, method)}


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

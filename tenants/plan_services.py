"""The plan-service registry: each service a plan can offer (VM clouds now; networks, web sites,
databases later) registers a `PlanService` in its AppConfig.ready, and plan pages, plan APIs,
subscription pages and quota checks read this registry. Adding a service touches nothing here.

A service declares:
- its **offer**: a form for the staff plan editor (which cloud, which catalog items) and how a plan's
  offer is read (for many plans in one query), saved, copied and removed;
- its **typed quotas** (`QuotaSpec`: numbers with units, booleans) whose limits are
  `tenants.QuotaLimit` rows of the plan and its add-ons, and its **allow-lists** (`AllowListSpec`:
  hardware profiles, templates...), kept in its own offer model;
- how it **counts usage**: for many subscriptions in one grouped query.

Usage is counted from the resources that exist plus those in flight, never kept in counters that
drift. Limits are read live from the plan and the subscription's add-ons, so a plan change reaches
existing subscriptions at once. `quota_check` must run in the transaction that inserts the resource,
after `tenants.services.subscription_lock`, so concurrent requests (and add-on purchases or
removals, which take the same lock) are serialized on the subscription row.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from django.db.models import Q

from portal.exceptions import QuotaExceeded, ServiceError
from tenants.lifecycle import SubscriptionLifecycle

if TYPE_CHECKING:
    from django import forms

    from tenants.models import Plan, Subscription

NUMBER = "number"
BOOLEAN = "boolean"


class ServiceNotOffered(ServiceError):
    code = "service_not_offered"
    status = 409


class UnknownService(ServiceError):
    code = "not_found"
    status = 404


@dataclass(frozen=True)
class QuotaSpec:
    """One quota a service declares. Numbers are counted against usage; booleans are flags (e.g.
    console access) the service asks with `quota_allows`."""

    key: str
    label: str
    kind: str = NUMBER
    unit: str = ""


@dataclass(frozen=True)
class AllowListSpec:
    """An allow-list a service's offer keeps (e.g. hardware profiles): empty means every item."""

    key: str
    label: str


@dataclass(frozen=True)
class AllowItem:
    id: Any
    name: str


@dataclass(frozen=True)
class Offer:
    """What a plan offers of one service: where (`target`, e.g. a cloud, for staff eyes only) and
    the allow-lists by key (an empty tuple: every item is allowed)."""

    service: str
    target_id: Any
    target: str
    allow: Mapping[str, tuple[AllowItem, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Quota:
    """One quota of one service. `limit` is the effective one (plan + add-ons; None: unlimited);
    `plan_limit` and `addon_extra` are its parts, for "10 + 4 = 14". Booleans: limit 1 or 0."""

    service: str
    key: str
    label: str
    limit: int | None
    used: int
    unit: str = ""
    kind: str = NUMBER
    plan_limit: int | None = None
    addon_extra: int = 0

    @property
    def is_boolean(self) -> bool:
        return self.kind == BOOLEAN

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    @property
    def over(self) -> int:
        """By how much use exceeds the limit (a lowered plan quota): 0 when within it."""
        if self.is_boolean or self.limit is None:
            return 0
        return max(0, self.used - self.limit)

    @property
    def percent(self) -> int:
        if not self.limit:
            return 0
        return min(100, round(100 * self.used / self.limit))


class PlanService(SubscriptionLifecycle, ABC):
    """A service plans can offer. Register an instance with `register()` in AppConfig.ready.

    Kept to reads and writes of the offer and to counting usage; other concerns come as mixins
    (tenants.lifecycle.SubscriptionLifecycle: how its resources are stopped, started and
    deprovisioned with their subscription), so this class stays the one thing to subclass.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    quotas: ClassVar[Sequence[QuotaSpec]] = ()
    allow_lists: ClassVar[Sequence[AllowListSpec]] = ()

    @abstractmethod
    def offers(self, plan_ids: Collection[Any]) -> dict[Any, Offer]:
        """The offer of each plan that offers the service, by plan id; a fixed number of queries."""

    def offered(self, subscription: Subscription) -> bool:
        """True if the subscription's plan offers the service (services may answer from a cache)."""
        return bool(self.offers([subscription.plan_id]))

    @abstractmethod
    def offer_form(self, *, plan: Plan | None, data: Mapping[str, Any] | None, user: Any, prefix: str) -> forms.Form:
        """The staff editor's form of a plan's offer (its fields: where, allow-lists), bound to
        `data` when given, else showing the plan's current offer. The API validates with it too."""

    @abstractmethod
    def offer_save(self, *, plan: Plan, data: Mapping[str, Any]) -> None:
        """Save the plan's offer from the offer form's cleaned data (raises ValidationError)."""

    @abstractmethod
    def offer_remove(self, *, plan: Plan) -> None:
        """Stop offering the service in the plan."""

    @abstractmethod
    def offer_copy(self, *, source: Plan, target: Plan) -> None:
        """Copy the offer (with its allow-lists) of `source` to `target` (plan clone)."""

    @abstractmethod
    def usage_many(self, subscription_ids: Collection[Any]) -> dict[Any, dict[str, int]]:
        """What each subscription uses now, counting resources in flight; one grouped query."""

    def usage(self, subscription: Subscription) -> dict[str, int]:
        if subscription.pk is None:
            return {}
        return self.usage_many([subscription.pk]).get(subscription.pk, {})

    def quota_spec(self, key: str) -> QuotaSpec:
        for spec in self.quotas:
            if spec.key == key:
                return spec
        raise KeyError(key)


_services: dict[str, PlanService] = {}


def register(service: PlanService) -> None:
    _services[service.name] = service


def plan_services() -> list[PlanService]:
    """The registered services, in registration order."""
    return list(_services.values())


def plan_service(name: str) -> PlanService:
    """The registered service called `name`; UnknownService (a 404) otherwise."""
    try:
        return _services[name]
    except KeyError:
        raise UnknownService(f"There is no service called '{name}'.") from None


# --- limits --------------------------------------------------------------------------------------


Limits = dict[tuple[str, str], int | None]


def plan_limits(plan_ids: Collection[Any]) -> dict[Any, Limits]:
    """The quota rows of each plan: {plan id: {(service, key): value}}; one query."""
    from tenants.models import QuotaLimit

    result: dict[Any, Limits] = defaultdict(dict)
    rows = QuotaLimit.objects.filter(plan_id__in=list(plan_ids)).values_list("plan_id", "service", "key", "value")
    for plan_id, service, key, value in rows:
        result[plan_id][(service, key)] = value
    return result


def addon_extras(subscription_ids: Collection[Any]) -> dict[Any, dict[tuple[str, str], int]]:
    """What the add-ons each subscription holds add, per (service, key): value times quantity, summed;
    one query."""
    from tenants.models import SubscriptionAddOn

    result: dict[Any, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    rows = SubscriptionAddOn.objects.filter(
        subscription_id__in=list(subscription_ids), addon__quota_limits__isnull=False
    ).values_list(
        "subscription_id",
        "quantity",
        "addon__quota_limits__service",
        "addon__quota_limits__key",
        "addon__quota_limits__value",
    )
    for sub_id, quantity, service, key, value in rows:
        result[sub_id][(service, key)] += (value or 0) * quantity
    return result


def effective(spec: QuotaSpec, plan_value: int | None, extra: int) -> int | None:
    """Plan + add-ons. Numbers: an unset plan value is unlimited whatever the add-ons. Booleans: an
    unset plan value allows; otherwise the plan's or any add-on's grant."""
    if spec.kind == BOOLEAN:
        if plan_value is None:
            return 1
        return 1 if (plan_value or extra) else 0
    if plan_value is None:
        return None
    return plan_value + extra


# --- reads for many plans and subscriptions -------------------------------------------------------


@dataclass(frozen=True)
class PlanOffer:
    """A service a plan offers: the service, its offer and the plan's quotas (used 0)."""

    service: PlanService
    offer: Offer
    quotas: list[Quota]

    @property
    def name(self) -> str:
        return self.service.name

    @property
    def label(self) -> str:
        return self.service.label

    @property
    def allow(self) -> list[tuple[AllowListSpec, tuple[AllowItem, ...]]]:
        return [(spec, tuple(self.offer.allow.get(spec.key, ()))) for spec in self.service.allow_lists]


def plan_offers(plan_ids: Collection[Any]) -> dict[Any, list[PlanOffer]]:
    """Each plan's services with their offers and quota limits; 1 query + each service's `offers`,
    whatever the number of plans."""
    plan_ids = list(plan_ids)
    result: dict[Any, list[PlanOffer]] = {pk: [] for pk in plan_ids}
    if not plan_ids:
        return result
    limits = plan_limits(plan_ids)
    for svc in _services.values():
        for plan_id, offer in svc.offers(plan_ids).items():
            rows = limits.get(plan_id, {})
            quotas = [
                Quota(
                    svc.name,
                    spec.key,
                    spec.label,
                    effective(spec, rows.get((svc.name, spec.key)), 0),
                    0,
                    spec.unit,
                    spec.kind,
                    rows.get((svc.name, spec.key)),
                )
                for spec in svc.quotas
            ]
            result[plan_id].append(PlanOffer(svc, offer, quotas))
    return result


def quota_offer(plan: Plan) -> list[Quota]:
    """The limits a subscription to `plan` would get, for each service the plan offers (use 0)."""
    return [q for offer in plan_offers([plan.pk])[plan.pk] for q in offer.quotas]


def subscription_quotas(subscriptions: Sequence[Subscription]) -> dict[Any, list[Quota]]:
    """Each subscription's quotas (plan + add-ons, used), for the services its plan offers; a fixed
    number of queries (the plans' offers, the add-ons, one usage query per service) at any size."""
    subs = [s for s in subscriptions if s.pk is not None]
    result: dict[Any, list[Quota]] = {s.pk: [] for s in subs}
    if not subs:
        return result
    offers = plan_offers({s.plan_id for s in subs})
    extras = addon_extras([s.pk for s in subs])
    usage: dict[str, dict[Any, dict[str, int]]] = {}
    for svc in _services.values():
        users = [s.pk for s in subs if any(o.name == svc.name for o in offers.get(s.plan_id, []))]
        usage[svc.name] = svc.usage_many(users) if users else {}
    for sub in subs:
        for offer in offers.get(sub.plan_id, []):
            used = usage[offer.name].get(sub.pk, {})
            for q in offer.quotas:
                extra = extras.get(sub.pk, {}).get((q.service, q.key), 0)
                spec = offer.service.quota_spec(q.key)
                result[sub.pk].append(
                    Quota(
                        q.service,
                        q.key,
                        q.label,
                        effective(spec, q.plan_limit, extra),
                        0 if q.is_boolean else used.get(q.key, 0),
                        q.unit,
                        q.kind,
                        q.plan_limit,
                        extra,
                    )
                )
    return result


def quota_list(subscription: Subscription, *, service: str | None = None) -> list[Quota]:
    """The subscription's quotas with their use, for the services its plan offers."""
    quotas = subscription_quotas([subscription])[subscription.pk] if subscription.pk else quota_offer(subscription.plan)
    return [q for q in quotas if service is None or q.service == service]


def subscriptions_over_quota(subscriptions: Iterable[Subscription]) -> dict[Any, list[Quota]]:
    """The subscriptions whose use exceeds an effective limit (a plan quota lowered under them),
    with each such quota (`Quota.over` says by how much); the others are left out. A fixed number
    of queries at any size: the staff subscription list filters with it (`over_quota_ids`)."""
    quotas = subscription_quotas(list(subscriptions))
    return {pk: over for pk, rows in quotas.items() if (over := [q for q in rows if q.over])}


def over_quota_ids(subscriptions: Iterable[Subscription]) -> set[Any]:
    """Ids of the over-quota subscriptions among `subscriptions` (e.g. for `.filter(pk__in=...)`)."""
    return set(subscriptions_over_quota(subscriptions))


@dataclass(frozen=True)
class QuotaTotal:
    """One quota summed over a plan's subscriptions: what they use against what the plan sold
    (`sold` None: some subscription is unlimited)."""

    service: str
    key: str
    label: str
    unit: str
    used: int
    sold: int | None

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.used / self.sold)) if self.sold else 0


def plan_quota_totals(
    plan: Plan, *, quotas: Mapping[Any, list[Quota]] | None = None, offers: list[PlanOffer] | None = None
) -> list[QuotaTotal]:
    """Use against what was sold, per number quota, over the plan's live subscriptions. Pass their
    `quotas` (subscription_quotas) and the plan's `offers` when the caller has them already."""
    from tenants.models import Subscription, SubscriptionState

    if quotas is None:
        live = Subscription.objects.filter(plan=plan).exclude(state=SubscriptionState.DELETED)
        quotas = subscription_quotas(list(live.only("pk", "plan_id")))
    per_sub = quotas
    totals: dict[tuple[str, str], list[Any]] = {}
    for offer in offers if offers is not None else plan_offers([plan.pk])[plan.pk]:
        for q in offer.quotas:
            if not q.is_boolean:
                totals[(q.service, q.key)] = [q, 0, 0]
    for rows in per_sub.values():
        for q in rows:
            entry = totals.get((q.service, q.key))
            if entry is None:
                continue
            entry[1] += q.used
            entry[2] = None if (entry[2] is None or q.limit is None) else entry[2] + q.limit
    return [QuotaTotal(q.service, q.key, q.label, q.unit, used, sold) for q, used, sold in totals.values()]


def addon_quotas(addon: Any) -> list[Quota]:
    """What one unit of an add-on adds, as quotas (`limit`: the amount), in the registry's order;
    reads `addon.quota_limits` (prefetch it for lists)."""
    amounts = {(row.service, row.key): row.value or 0 for row in addon.quota_limits.all()}
    return [
        Quota(svc.name, spec.key, spec.label, amounts[(svc.name, spec.key)], 0, spec.unit, spec.kind)
        for svc in _services.values()
        for spec in svc.quotas
        if amounts.get((svc.name, spec.key))
    ]


# --- the check ------------------------------------------------------------------------------------


def _subscription_limits(subscription: Subscription, service: str) -> tuple[Limits, dict[str, int]]:
    """The plan's rows and the add-ons' extras for one subscription and service; one query."""
    from tenants.models import QuotaLimit

    plan_rows: Limits = {}
    extras: dict[str, int] = defaultdict(int)
    rows = QuotaLimit.objects.filter(
        Q(plan_id=subscription.plan_id) | Q(addon__subscriptions__subscription_id=subscription.pk), service=service
    ).values_list("plan_id", "key", "value", "addon__subscriptions__quantity")
    for plan_id, key, value, quantity in rows:
        if plan_id is not None:
            plan_rows[(service, key)] = value
        else:
            extras[key] += (value or 0) * (quantity or 0)
    return plan_rows, extras


def quota_check(*, subscription: Subscription, service: str, request: Mapping[str, int]) -> None:
    """Raise QuotaExceeded if adding `request` to current use passes an effective limit (plan +
    add-ons), ServiceNotOffered if the plan lacks the service.

    The caller holds the subscription's row lock (tenants.services.subscription_lock) in the
    transaction that will insert the resource: creates and add-on changes are serialized on it.
    """
    svc = plan_service(service)
    if not svc.offered(subscription):
        raise ServiceNotOffered(f"The plan of subscription '{subscription}' does not offer {svc.label}.")
    plan_rows, extras = _subscription_limits(subscription, service)
    usage = svc.usage(subscription)
    for key, amount in request.items():
        spec = svc.quota_spec(key)
        limit = effective(spec, plan_rows.get((service, key)), extras.get(key, 0))
        used = usage.get(key, 0)
        if limit is not None and used + amount > limit:
            raise QuotaExceeded(label=spec.label, limit=limit, used=used, requested=amount, unit=spec.unit)


def quota_allows(*, subscription: Subscription, service: str, key: str) -> bool:
    """A boolean quota's effective value (plan or an add-on grants it; unset: allowed)."""
    svc = plan_service(service)
    plan_rows, extras = _subscription_limits(subscription, service)
    return bool(effective(svc.quota_spec(key), plan_rows.get((service, key)), extras.get(key, 0)))

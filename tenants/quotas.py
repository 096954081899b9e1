"""The quota registry: each service (VM clouds now; networks, web sites, databases later) registers
how it reads a subscription's limits and counts its usage.

Usage is counted from the resources that exist plus those in flight (e.g. VMs still being
created), never kept in counters that drift. `quota_check` must run in the transaction that
inserts the resource, after `subscription_lock`, so concurrent requests are serialized on the
subscription row and can't both take the last unit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from portal.exceptions import QuotaExceeded, ServiceError
from tenants.lifecycle import SubscriptionLifecycle

if TYPE_CHECKING:
    from tenants.models import Plan, Subscription


class ServiceNotOffered(ServiceError):
    code = "service_not_offered"
    status = 409


@dataclass(frozen=True)
class Quota:
    """One quota of one service for a subscription. `limit` None means unlimited."""

    service: str
    key: str
    label: str
    limit: int | None
    used: int
    unit: str = ""

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    @property
    def percent(self) -> int:
        if not self.limit:
            return 0
        return min(100, round(100 * self.used / self.limit))


class QuotaService(SubscriptionLifecycle, ABC):
    """How one service's quotas are read, and (tenants.lifecycle) how its resources are stopped,
    started and deprovisioned with its subscription. Register an instance with `register()` in
    AppConfig.ready."""

    name: str
    label: str
    # key -> (label, unit), in display order
    quotas: Mapping[str, tuple[str, str]]

    @abstractmethod
    def limits(self, subscription: Subscription) -> Mapping[str, int | None] | None:
        """The subscription's limits per key (plan plus add-ons), or None if its plan lacks the service."""

    @abstractmethod
    def usage(self, subscription: Subscription) -> Mapping[str, int]:
        """What the subscription uses now, counting resources in flight."""


_services: dict[str, QuotaService] = {}


def register(service: QuotaService) -> None:
    _services[service.name] = service


def quota_services() -> list[QuotaService]:
    return list(_services.values())


def quota_list(subscription: Subscription, *, service: str | None = None) -> list[Quota]:
    """The subscription's quotas with their use, for the services its plan offers."""
    result: list[Quota] = []
    for svc in _services.values():
        if service is not None and svc.name != service:
            continue
        limits = svc.limits(subscription)
        if limits is None:
            continue
        usage = svc.usage(subscription)
        for key, (label, unit) in svc.quotas.items():
            result.append(Quota(svc.name, key, label, limits.get(key), usage.get(key, 0), unit))
    return result


def quota_offer(plan: Plan) -> list[Quota]:
    """The limits a subscription to `plan` would get, for each service the plan offers (use 0)."""
    from tenants.models import Subscription

    probe = Subscription(plan=plan)
    offer: list[Quota] = []
    for svc in _services.values():
        limits = svc.limits(probe)
        if limits is not None:
            offer += [
                Quota(svc.name, key, label, limits.get(key), 0, unit) for key, (label, unit) in svc.quotas.items()
            ]
    return offer


def quota_check(*, subscription: Subscription, service: str, request: Mapping[str, int]) -> None:
    """Raise QuotaExceeded if adding `request` to current use passes a limit.

    The caller holds the subscription's row lock (tenants.services.subscription_lock) in the
    transaction that will insert the resource.
    """
    svc = _services[service]
    limits = svc.limits(subscription)
    if limits is None:
        raise ServiceNotOffered(f"The plan of subscription '{subscription}' does not offer {svc.label}.")
    usage = svc.usage(subscription)
    for key, amount in request.items():
        limit = limits.get(key)
        used = usage.get(key, 0)
        if limit is not None and used + amount > limit:
            label, unit = svc.quotas[key]
            raise QuotaExceeded(label=label, limit=limit, used=used, requested=amount, unit=unit)

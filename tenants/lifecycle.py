"""The subscription lifecycle, declared once: its state machine, and the hooks each service
implements to stop, start and deprovision a subscription's resources.

A lifecycle action (tenants.services: suspend, activate, delete, re-sync) is one parent job
(portal.job_groups) whose children are the services' own resource jobs (a VM's stop job...), so
its progress is theirs. What a service didn't manage is reported by `leftovers`, named with the
error, and the subscription stays *out of sync* until a re-sync finishes the work.

Services plug in by registering with the plan-service registry (tenants.plan_services, whose
`PlanService` inherits `SubscriptionLifecycle`): `lifecycle_services()` is the one place here that
knows where they are.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from portal.states import StateMachine

from .models import Subscription, SubscriptionState

if TYPE_CHECKING:
    from portal.models import Job

S = SubscriptionState

SUBSCRIPTION_STATES = StateMachine(
    model=Subscription,
    initial=S.ACTIVE,
    transitions={
        S.ACTIVE: {S.SUSPENDED, S.DELETED},
        S.SUSPENDED: {S.ACTIVE, S.DELETED},
        # Deleted is for good: the row and its resources' records stay for usage and audit.
        S.DELETED: set(),
    },
    updated_field="updated_at",
    subscription_field=None,
)


class LifecycleAction:
    """The lifecycle actions that fan out as jobs, and the service method each one calls."""

    SUSPEND = "suspend"
    ACTIVATE = "activate"
    DELETE = "delete"

    METHODS = {SUSPEND: "stop_all", ACTIVATE: "start_suspended", DELETE: "deprovision_all"}
    LABELS = {SUSPEND: "Suspend subscription", ACTIVATE: "Activate subscription", DELETE: "Delete subscription"}

    @classmethod
    def job_kind(cls, action: str) -> str:
        return f"subscription.{action}"


@dataclass(frozen=True)
class Leftover:
    """A resource a lifecycle action didn't bring where it should be, and why (shown to staff)."""

    resource: str
    kind: str
    error: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Resource:
    """One of a subscription's resources as the subscription's page lists it."""

    name: str
    kind: str
    state: str
    busy: bool = False


class SubscriptionLifecycle(ABC):
    """What a service does when its subscription is suspended, activated or deleted.

    Each action method runs inside the transaction of the lifecycle action, with the subscription
    row locked: it creates one child job under `parent` per resource (with
    `portal.jobs.job_create(parent=parent)`), moving each resource into its busy state as its own
    actions do. It must be idempotent: a re-sync calls it again to finish what is left.
    """

    label: ClassVar[str]

    @abstractmethod
    def stop_all(self, subscription: Subscription, *, parent: Job, by: Any) -> None:
        """Stop every running resource, remembering which were running (for `start_suspended`)."""

    @abstractmethod
    def start_suspended(self, subscription: Subscription, *, parent: Job, by: Any) -> None:
        """Start again what was running before the suspension; what was stopped stays stopped."""

    @abstractmethod
    def deprovision_all(self, subscription: Subscription, *, parent: Job, by: Any) -> None:
        """Remove every resource from the fabric; the records stay (usage, audit)."""

    @abstractmethod
    def leftovers(self, subscription: Subscription) -> list[Leftover]:
        """What isn't where `subscription.sync_action` should have left it, each with why."""

    def resources(self, subscription: Subscription) -> list[Resource]:
        """The subscription's live resources of this service (its page lists them). Default: none."""
        return []

    def forget_suspension(self, subscription: Subscription) -> None:
        """The activation reached every resource: drop what was remembered at suspension.
        Default: nothing was remembered."""
        return None


def lifecycle_services() -> list[SubscriptionLifecycle]:
    """Every registered service with lifecycle hooks. The one place that knows the registry."""
    from tenants.plan_services import plan_services

    return [service for service in plan_services() if isinstance(service, SubscriptionLifecycle)]

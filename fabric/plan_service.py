"""The VM cloud service of plans: a cloud, its allowed sizes and templates, and its quotas
(virtual machines, vCPU cores, memory, console access), registered with tenants.plan_services; and
its share of the subscription lifecycle (tenants.lifecycle): stop, start and delete the VMs as jobs."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from django import forms
from django.db.models import Count, Prefetch, Sum

from tenants.lifecycle import Leftover, Resource
from tenants.plan_services import BOOLEAN, AllowItem, AllowListSpec, Offer, PlanService, QuotaSpec

from .models import Cloud, HardwareProfile, VMTemplate

if TYPE_CHECKING:
    from portal.models import Job
    from tenants.models import Plan, Subscription


def _strict_id(value: Any) -> None:
    """Ids are taken as written: `true`, `3.0` or " 3" is not id 3 (as portal.api.PrimaryKeyRelatedField)."""
    if isinstance(value, bool | float) or (isinstance(value, str) and value and not value.isdigit()):
        raise forms.ValidationError("Enter a whole-number id.", code="invalid_choice")


class _CloudField(forms.ModelChoiceField):
    def to_python(self, value: Any) -> Any:
        _strict_id(value)
        return super().to_python(value)

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.stamp.endpoint} / {obj.stamp} / {obj.name}"


class _CatalogField(forms.ModelMultipleChoiceField):
    def clean(self, value: Any) -> Any:
        for item in value if isinstance(value, list | tuple) else []:
            _strict_id(item)
        return super().clean(value)

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.endpoint}: {obj}"


class VMCloudOfferForm(forms.Form):
    """Which cloud a plan's subscribers use and which of its endpoint's sizes and templates they may
    pick (none chosen: all of them)."""

    cloud = _CloudField(label="Cloud", queryset=Cloud.objects.none(), empty_label="Choose a cloud…")
    hardware_profiles = _CatalogField(
        label="Allowed sizes (hardware profiles)",
        queryset=HardwareProfile.objects.none(),
        required=False,
        help_text="None selected: every size of the cloud's endpoint.",
    )
    templates = _CatalogField(
        label="Allowed templates",
        queryset=VMTemplate.objects.none(),
        required=False,
        help_text="None selected: every template of the cloud's endpoint.",
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        live = {"retired_at__isnull": True}
        clouds = Cloud.objects.visible_to(user).filter(**live).select_related("stamp__endpoint")
        self.fields["cloud"].queryset = clouds  # type: ignore[attr-defined]
        sizes = HardwareProfile.objects.visible_to(user).filter(**live).select_related("endpoint")
        self.fields["hardware_profiles"].queryset = sizes  # type: ignore[attr-defined]
        templates = VMTemplate.objects.visible_to(user).filter(**live).select_related("endpoint")
        self.fields["templates"].queryset = templates  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        cloud = data.get("cloud")
        if cloud is not None:
            endpoint_id = cloud.stamp.endpoint_id
            for name, noun in (("hardware_profiles", "size"), ("templates", "template")):
                foreign = [str(item) for item in data.get(name) or [] if item.endpoint_id != endpoint_id]
                if foreign:
                    self.add_error(name, f"Not offered by the cloud's endpoint ({noun}): {', '.join(foreign)}.")
        return data


class VMCloudService(PlanService):
    name = "vm_cloud"
    label = "Virtual machines"
    quotas = (
        QuotaSpec("vms", "Virtual machines"),
        QuotaSpec("cores", "vCPU cores"),
        QuotaSpec("memory_mb", "Memory", unit="MB"),
        QuotaSpec("console", "Console access", kind=BOOLEAN),
    )
    allow_lists = (
        AllowListSpec("hardware_profiles", "Sizes (hardware profiles)"),
        AllowListSpec("templates", "Templates"),
    )

    def offers(self, plan_ids: Collection[Any]) -> dict[Any, Offer]:
        """Three queries: the offers with their clouds, then each allow-list."""
        from .models import VMCloudPlanService

        rows = (
            VMCloudPlanService.objects.filter(plan_id__in=list(plan_ids))
            .select_related("cloud__stamp__endpoint")
            .prefetch_related(
                Prefetch("hardware_profiles", queryset=HardwareProfile.objects.order_by("cpu", "memory_mb", "pk")),
                Prefetch("templates", queryset=VMTemplate.objects.order_by("name", "pk")),
            )
        )
        return {
            row.plan_id: Offer(
                service=self.name,
                target_id=row.cloud_id,
                target=f"{row.cloud.stamp.endpoint} / {row.cloud.stamp} / {row.cloud.name}",
                allow={
                    "hardware_profiles": tuple(AllowItem(p.pk, str(p)) for p in row.hardware_profiles.all()),
                    "templates": tuple(AllowItem(t.pk, t.name) for t in row.templates.all()),
                },
            )
            for row in rows
        }

    def offered(self, subscription: Subscription) -> bool:
        from tenants.models import Plan, Subscription

        from .models import VMCloudPlanService

        if Subscription.plan.is_cached(subscription) and Plan.vm_cloud_service.is_cached(subscription.plan):
            # Read with the subscription (vm_create's lock): no second query.
            return getattr(subscription.plan, "vm_cloud_service", None) is not None
        return VMCloudPlanService.objects.filter(plan_id=subscription.plan_id).exists()

    def offer_form(self, *, plan: Plan | None, data: Mapping[str, Any] | None, user: Any, prefix: str) -> forms.Form:
        from .models import VMCloudPlanService

        initial: dict[str, Any] = {}
        if plan is not None and plan.pk is not None:
            offer = VMCloudPlanService.objects.filter(plan=plan).first()
            if offer is not None:
                initial = {
                    "cloud": offer.cloud_id,
                    "hardware_profiles": list(offer.hardware_profiles.values_list("pk", flat=True)),
                    "templates": list(offer.templates.values_list("pk", flat=True)),
                }
        return VMCloudOfferForm(data, initial=initial, user=user, prefix=prefix)

    def offer_save(self, *, plan: Plan, data: Mapping[str, Any]) -> None:
        from .services import plan_vm_cloud_offer_set

        plan_vm_cloud_offer_set(
            plan=plan,
            cloud=data["cloud"],
            hardware_profiles=list(data.get("hardware_profiles") or []),
            templates=list(data.get("templates") or []),
        )

    def offer_remove(self, *, plan: Plan) -> None:
        from .models import VMCloudPlanService

        VMCloudPlanService.objects.filter(plan=plan).delete()

    def offer_copy(self, *, source: Plan, target: Plan) -> None:
        from .models import VMCloudPlanService

        offer = VMCloudPlanService.objects.filter(plan=source).first()
        if offer is None:
            return
        copy = VMCloudPlanService.objects.create(plan=target, cloud_id=offer.cloud_id)
        copy.hardware_profiles.set(offer.hardware_profiles.all())
        copy.templates.set(offer.templates.all())

    def usage_many(self, subscription_ids: Collection[Any]) -> dict[Any, dict[str, int]]:
        """Every VM that isn't deleted counts, including ones being created or deleted, except a
        failed one that nothing was ever built for on the fabric (no fabric id): it holds nothing."""
        from .models import VirtualMachine, VMState

        rows = (
            VirtualMachine.objects.filter(subscription_id__in=list(subscription_ids))
            .exclude(state=VMState.DELETED)
            .exclude(state=VMState.FAILED, fabric_id="")
            .order_by()
            .values("subscription_id")
            .annotate(vms=Count("id"), cores=Sum("cpu"), memory_mb=Sum("memory_mb"))
        )
        return {row["subscription_id"]: {k: int(row[k] or 0) for k in ("vms", "cores", "memory_mb")} for row in rows}

    # --- the subscription lifecycle: each VM's own declared action (fabric.lifecycle), as a child job

    def stop_all(self, subscription: Subscription, *, parent: Job, by: Any) -> None:
        from .services import vm_lifecycle_stop_all

        vm_lifecycle_stop_all(subscription=subscription, parent=parent, by=by)

    def start_suspended(self, subscription: Subscription, *, parent: Job, by: Any) -> None:
        from .services import vm_lifecycle_start_suspended

        vm_lifecycle_start_suspended(subscription=subscription, parent=parent, by=by)

    def deprovision_all(self, subscription: Subscription, *, parent: Job, by: Any) -> None:
        from .services import vm_lifecycle_deprovision_all

        vm_lifecycle_deprovision_all(subscription=subscription, parent=parent, by=by)

    def forget_suspension(self, subscription: Subscription) -> None:
        from .services import vm_lifecycle_forget_suspension

        vm_lifecycle_forget_suspension(subscription=subscription)

    def leftovers(self, subscription: Subscription) -> list[Leftover]:
        from .selectors import vm_lifecycle_leftovers

        return [
            Leftover(resource=vm.name, kind="Virtual machine", error=error)
            for vm, error in vm_lifecycle_leftovers(subscription=subscription)
        ]

    def resources(self, subscription: Subscription) -> list[Resource]:
        from .selectors import vm_lifecycle_resources

        return [
            Resource(name=vm.name, kind="Virtual machine", state=vm.get_state_display(), busy=vm.is_busy)
            for vm in vm_lifecycle_resources(subscription=subscription)
        ]

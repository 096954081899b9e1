"""Seed the embedded demo: an administrator and an operator (admin portal), a tenant account, a
simulator endpoint, a public plan and an add-on offered with it.

Idempotent: running it again changes nothing that exists.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from fabric.models import Cloud, FabricEndpoint
from fabric.services import endpoint_register, plan_vm_cloud_set
from portal.jobs import job_execute
from tenants.models import AddOn, Plan, PlanState, User
from tenants.services import addon_save, plan_create, plan_set_state

STAFF_EMAIL, STAFF_PASSWORD = "admin@canopy.test", "Canopy-Admin-1"
OPERATOR_EMAIL, OPERATOR_PASSWORD = "operator@canopy.test", "Canopy-Operator-1"
TENANT_EMAIL, TENANT_PASSWORD = "tenant@canopy.test", "Canopy-Tenant-1"
# Latency of the demo fabric, so progress is visible; tests use zero.
DEMO_LATENCY = {
    "create_vm": 4,
    "start_vm": 1.5,
    "stop_vm": 1.5,
    "shutdown_vm": 2,
    "restart_vm": 2,
    "delete_vm": 2,
}


class Command(BaseCommand):
    help = "Create demo accounts, a simulator fabric endpoint, a public plan and an add-on (idempotent)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument(
            "--latency", type=float, default=None, help="Seconds per fabric operation (default: demo values)"
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        if not User.objects.filter(email=STAFF_EMAIL).exists():
            User.objects.create_user(
                STAFF_EMAIL, STAFF_PASSWORD, full_name="Demo Administrator", is_staff=True, is_superuser=True
            )
        if not User.objects.filter(email=OPERATOR_EMAIL).exists():
            User.objects.create_user(
                OPERATOR_EMAIL, OPERATOR_PASSWORD, full_name="Demo Operator", is_staff=True, staff_role="operator"
            )
        if not User.objects.filter(email=TENANT_EMAIL).exists():
            User.objects.create_user(TENANT_EMAIL, TENANT_PASSWORD, full_name="Demo Tenant")

        endpoint = FabricEndpoint.objects.filter(name="Simulator").first()
        if endpoint is None:
            latency = DEMO_LATENCY if options["latency"] is None else options["latency"]
            endpoint, job = endpoint_register(name="Simulator", driver="simulator", settings_={"latency": latency})
            # Read the fabric now, in this process, so the demo is complete before the sites start.
            job_execute(str(job.pk))
            endpoint.refresh_from_db()

        if not Plan.objects.exists():
            cloud = Cloud.objects.filter(stamp__endpoint=endpoint).order_by("name").first()
            if cloud is not None:
                with transaction.atomic():
                    plan = plan_create(
                        name="Starter",
                        description="Virtual machines in the Gold cloud: up to 10 VMs, 16 vCPU, 32 GB.",
                    )
                    plan_vm_cloud_set(plan=plan, cloud=cloud, max_vms=10, max_cores=16, max_memory_mb=32768)
                    plan_set_state(plan=plan, state=PlanState.PUBLIC)

        starter = Plan.objects.filter(name="Starter").first()
        if starter is not None and not AddOn.objects.exists():
            addon_save(
                name="+4 vCPU, +8 GB",
                description="Four more vCPU cores and 8 GB more memory for a Starter subscription.",
                max_per_subscription=2,
                plans=[starter],
                quotas={"vm_cloud": {"cores": 4, "memory_mb": 8192}},
            )

        self.stdout.write(self.style.SUCCESS("Demo data is in place."))
        self.stdout.write(f"  Admin portal account:  {STAFF_EMAIL} / {STAFF_PASSWORD} (administrator)")
        self.stdout.write(f"  Admin portal account:  {OPERATOR_EMAIL} / {OPERATOR_PASSWORD} (operator)")
        self.stdout.write(f"  Tenant portal account: {TENANT_EMAIL} / {TENANT_PASSWORD}")

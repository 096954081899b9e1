"""A plan's VM quotas move from VMCloudPlanService's columns to tenants.QuotaLimit rows (service
"vm_cloud"), so services declare quotas without columns; offers gain allow-lists of sizes and templates."""

from django.db import migrations, models

COLUMNS = {"max_vms": "vms", "max_cores": "cores", "max_memory_mb": "memory_mb"}


def columns_to_rows(apps, schema_editor):
    offers = apps.get_model("fabric", "VMCloudPlanService")
    limits = apps.get_model("tenants", "QuotaLimit")
    # Rows left by an earlier forward run (then reversed) are replaced by the columns' values.
    limits.objects.filter(plan__isnull=False, service="vm_cloud", key__in=list(COLUMNS.values())).delete()
    limits.objects.bulk_create(
        limits(plan_id=offer.plan_id, service="vm_cloud", key=key, value=getattr(offer, column))
        for offer in offers.objects.all()
        for column, key in COLUMNS.items()
        if getattr(offer, column) is not None
    )


def rows_to_columns(apps, schema_editor):
    offers = apps.get_model("fabric", "VMCloudPlanService")
    limits = apps.get_model("tenants", "QuotaLimit")
    keys = {key: column for column, key in COLUMNS.items()}
    for row in limits.objects.filter(plan__isnull=False, service="vm_cloud", key__in=list(keys)):
        offers.objects.filter(plan_id=row.plan_id).update(**{keys[row.key]: row.value})


class Migration(migrations.Migration):
    dependencies = [
        ("fabric", "0007_vm_running_before_suspension"),
        ("tenants", "0006_plan_services_quota_rows_addons_invitations"),
    ]

    operations = [
        migrations.RunPython(columns_to_rows, rows_to_columns),
        migrations.RemoveField(model_name="vmcloudplanservice", name="max_cores"),
        migrations.RemoveField(model_name="vmcloudplanservice", name="max_memory_mb"),
        migrations.RemoveField(model_name="vmcloudplanservice", name="max_vms"),
        migrations.AddField(
            model_name="vmcloudplanservice",
            name="hardware_profiles",
            field=models.ManyToManyField(blank=True, related_name="allowed_in_plans", to="fabric.hardwareprofile"),
        ),
        migrations.AddField(
            model_name="vmcloudplanservice",
            name="templates",
            field=models.ManyToManyField(blank=True, related_name="allowed_in_plans", to="fabric.vmtemplate"),
        ),
    ]

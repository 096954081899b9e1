"""The migration that moved a plan's VM quotas from VMCloudPlanService's columns to QuotaLimit rows:
a limit becomes a row, an unlimited (null) one no row, and going back restores the columns."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [
    ("fabric", "0007_vm_running_before_suspension"),
    ("tenants", "0006_plan_services_quota_rows_addons_invitations"),
]
AFTER = [("fabric", "0008_plan_offer_allow_lists_quota_rows")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


def test_quota_columns_become_rows_and_come_back(transactional_db):
    old = migrate(BEFORE)
    endpoint = old.get_model("fabric", "FabricEndpoint").objects.create(name="E", driver="simulator")
    stamp = old.get_model("fabric", "Stamp").objects.create(endpoint=endpoint, external_id="s", name="S")
    cloud = old.get_model("fabric", "Cloud").objects.create(stamp=stamp, external_id="c", name="C")
    plan = old.get_model("tenants", "Plan").objects.create(name="P")
    old.get_model("fabric", "VMCloudPlanService").objects.create(
        plan=plan, cloud=cloud, max_vms=5, max_cores=None, max_memory_mb=4096
    )
    try:
        new = migrate(AFTER)
        rows = new.get_model("tenants", "QuotaLimit").objects.filter(plan_id=plan.pk)
        assert sorted(rows.values_list("service", "key", "value")) == [
            ("vm_cloud", "memory_mb", 4096),
            ("vm_cloud", "vms", 5),
        ]
        back = migrate(BEFORE)
        offer = back.get_model("fabric", "VMCloudPlanService").objects.get(plan_id=plan.pk)
        assert (offer.max_vms, offer.max_cores, offer.max_memory_mb) == (5, None, 4096)
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

"""A read compiled once per process returns what the ORM's own get() returns, every time."""

import uuid

import pytest

from fabric.models import VirtualMachine
from portal.prepared import PreparedGet
from tests import factories

VMS = PreparedGet(lambda: VirtualMachine.objects.select_related("cloud__stamp__endpoint", "template"))


def test_a_prepared_get_builds_the_same_objects_as_the_orm_and_rereads_each_time(subscription, endpoint):
    first = factories.make_vm(subscription, endpoint, "web01")
    second = factories.make_vm(subscription, endpoint, "web02")
    for vm in (first, second):  # the second call reuses the statement compiled by the first
        orm = VirtualMachine.objects.select_related("cloud__stamp__endpoint", "template").get(pk=vm.pk)
        got = VMS.get(str(vm.pk))
        assert [getattr(got, f.attname) for f in VirtualMachine._meta.concrete_fields] == [
            getattr(orm, f.attname) for f in VirtualMachine._meta.concrete_fields
        ]
        assert (got.cloud, got.cloud.stamp, got.cloud.stamp.endpoint, got.template) == (
            orm.cloud,
            orm.cloud.stamp,
            orm.cloud.stamp.endpoint,
            orm.template,
        )
        assert got.cloud.stamp.endpoint.settings == orm.cloud.stamp.endpoint.settings  # JSON, converted
    VirtualMachine.objects.filter(pk=first.pk).update(name="renamed")
    assert VMS.get(first.pk).name == "renamed"


def test_a_prepared_get_of_a_missing_key_raises_does_not_exist(db):
    with pytest.raises(VirtualMachine.DoesNotExist):
        VMS.get(uuid.uuid4())

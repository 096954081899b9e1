"""A process builds one driver per endpoint and rebuilds it when the endpoint's settings change."""

import threading

from fabric import services
from fabric.models import FabricEndpoint
from fabric.services import endpoint_driver


def test_one_driver_per_endpoint_until_its_settings_change(endpoint):
    first = endpoint_driver(endpoint)
    assert endpoint_driver(FabricEndpoint.objects.get(pk=endpoint.pk)) is first

    endpoint.settings = {**endpoint.settings, "latency": {"create_vm": 2}}
    endpoint.save()
    changed = endpoint_driver(FabricEndpoint.objects.get(pk=endpoint.pk))
    assert changed is not first and changed.settings["latency"] == {"create_vm": 2}

    endpoint.settings["latency"]["create_vm"] = 3  # edited in place: still a change
    assert endpoint_driver(endpoint).settings["latency"] == {"create_vm": 3}
    assert changed.settings["latency"] == {"create_vm": 2}  # the driver kept its own copy


def test_threads_racing_for_a_new_endpoint_share_one_driver(endpoint, monkeypatch):
    monkeypatch.setattr(services, "_drivers", {})
    barrier = threading.Barrier(8)
    drivers = []

    def get() -> None:
        barrier.wait(timeout=10)
        drivers.append(endpoint_driver(endpoint))

    threads = [threading.Thread(target=get) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(drivers) == 8 and len({id(d) for d in drivers}) == 1

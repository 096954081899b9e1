"""Each driver declares its settings; registration refuses bad ones with field errors, before any job."""

import pytest
from django.core.exceptions import ValidationError

from fabric.models import FabricEndpoint
from fabric.services import endpoint_register
from portal.models import Job


def _register(settings_):
    return endpoint_register(name="Lab", driver="simulator", settings_=settings_)


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"path": "/etc/canopy.sqlite3"}, "settings.path", "must be under the data directory"),
        ({"path": 12}, "settings.path", "Must be text"),
        ({"latency": "fast"}, "settings.latency", "Must be a number or an object"),
        ({"latency": -1}, "settings.latency", "at least 0"),
        ({"latency": {"create_vm": 1, "fly": 2}}, "settings.latency", "Unknown operation 'fly'"),
        ({"latency": {"create_vm": True}}, "settings.latency", "Must be a number (create_vm)"),
        ({"failure_rate": 1.5}, "settings.failure_rate", "between 0 and 1"),
        ({"failure_rate": {"describe": -0.1}}, "settings.failure_rate", "between 0 and 1 (describe)"),
        ({"topology": []}, "settings.topology", "Must be an object"),
        ({"topology": {"stamps": []}}, "settings.topology", "'clouds' must be a list"),
        ({"timeout": 0}, "settings.timeout", "more than 0 seconds"),
        ({"timeout": "1m"}, "settings.timeout", "Must be a number"),
        ({"colour": "blue"}, "settings.colour", "Unknown setting"),
    ],
)
def test_bad_settings_are_field_errors_and_register_nothing(db, simulator_dir, options, field, message):
    with pytest.raises(ValidationError) as caught:
        _register({"path": str(simulator_dir / "lab.sqlite3"), **options})
    errors = caught.value.message_dict
    assert message in errors[field][0], errors
    assert not FabricEndpoint.objects.exists() and not Job.objects.exists()


def test_a_path_escaping_the_data_directory_through_dots_is_refused(db, simulator_dir):
    with pytest.raises(ValidationError, match="under the data directory"):
        _register({"path": str(simulator_dir / ".." / ".." / "escape.sqlite3")})


def test_a_topology_cloud_on_an_unknown_stamp_or_with_negative_capacity_is_refused(db, simulator_dir):
    topology = {
        "stamps": [{"id": "s1", "name": "S1"}],
        "clouds": [{"id": "c1", "stamp_id": "s2", "name": "C1"}],
        "hardware_profiles": [],
        "templates": [],
    }
    with pytest.raises(ValidationError, match="no stamp 's2'"):
        _register({"path": str(simulator_dir / "t.sqlite3"), "topology": topology})
    topology["clouds"][0].update(stamp_id="s1", capacity={"vcpu": -4})
    with pytest.raises(ValidationError, match=r"capacity\.vcpu must be a whole number"):
        _register({"path": str(simulator_dir / "t.sqlite3"), "topology": topology})


def test_good_settings_and_the_default_path_are_accepted(db, simulator_dir, settings):
    endpoint, _ = _register({"path": str(simulator_dir / "ok.sqlite3"), "latency": {"create_vm": 0.5}, "timeout": 5})
    assert endpoint.settings["timeout"] == 5
    settings.CANOPY_SIMULATOR_DIR = simulator_dir / "default"
    endpoint, _ = endpoint_register(name="Default", driver="simulator")
    assert endpoint.settings["path"].startswith(str(simulator_dir / "default"))

"""The generic backend loader (portal/backends.py): by entry point name, built-in name or dotted path,
and only subclasses of the declared base; fabric drivers are loaded through it."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from fabric.drivers import FabricDriver, available_drivers, driver_loader
from fabric.drivers.simulator import SimulatorDriver
from fabric.services import endpoint_register
from portal.backends import BackendLoader


class Base:
    def __init__(self, settings: dict) -> None:
        self.settings = settings


class Good(Base):
    pass


class NotABackend:
    pass


def not_a_class() -> None:
    pass


HERE = __name__


@pytest.fixture
def loader() -> BackendLoader[Base]:
    return BackendLoader(
        group="canopy.test_backends", base=Base, builtins={"good": f"{HERE}.Good"}, kind="test backend"
    )


def test_a_name_from_the_entry_point_group_loads_its_class():
    # the project's own pyproject.toml declares `simulator` in canopy.fabric_drivers; no built-ins here
    loader: BackendLoader[FabricDriver] = BackendLoader(group="canopy.fabric_drivers", base=FabricDriver)
    assert loader.available()["simulator"] == "fabric.drivers.simulator.SimulatorDriver"
    assert loader.resolve("simulator") is SimulatorDriver


def test_a_built_in_name_or_a_dotted_path_loads_and_builds_with_the_settings(loader):
    assert loader.available() == {"good": f"{HERE}.Good"}
    assert loader.resolve("good") is Good and loader.resolve(f"{HERE}.Good") is Good
    backend = loader.load("good", {"region": "north"})
    assert isinstance(backend, Good) and backend.settings == {"region": "north"}


@pytest.mark.parametrize("target", ["NotABackend", "not_a_class", "HERE"])
def test_something_that_is_not_a_subclass_of_the_base_is_refused(loader, target):
    with pytest.raises(ImportError) as raised:
        loader.resolve(f"{HERE}.{target}")
    assert str(raised.value) == (f"'{HERE}.{target}' is not a test backend: it must be a subclass of {HERE}.Base.")


def test_an_unknown_name_lists_the_available_ones(loader):
    with pytest.raises(ImportError, match=r"^No test backend named 'nope'\. Available: good\.$"):
        loader.resolve("nope")
    with pytest.raises(
        ImportError, match=r"^Cannot import test backend 'no_such_module\.Thing' \(.*\)\. Available: good\.$"
    ):
        loader.resolve("no_such_module.Thing")
    with pytest.raises(
        ImportError, match=rf"^Cannot import test backend '{HERE}\.Missing' \(.*\)\. Available: good\.$"
    ):
        loader.resolve(f"{HERE}.Missing")


def test_fabric_drivers_come_through_the_loader(db):
    assert driver_loader.base is FabricDriver and "simulator" in available_drivers()
    with pytest.raises(ValidationError) as raised:
        endpoint_register(name="X", driver="tests.unit.test_backends.Good")
    assert raised.value.message_dict == {
        "driver": [
            "'tests.unit.test_backends.Good' is not a fabric driver: it must be a subclass of "
            "fabric.drivers.base.FabricDriver."
        ]
    }
    with pytest.raises(ValidationError) as raised:
        endpoint_register(name="X", driver="nope")
    assert raised.value.message_dict["driver"] == ["No fabric driver named 'nope'. Available: simulator."]

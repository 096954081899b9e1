"""A simulator that needs a credential, as a real fabric's driver does: it exercises secret settings."""

from fabric.drivers.base import SettingField
from fabric.drivers.simulator import SimulatorDriver


class CredentialSimulatorDriver(SimulatorDriver):
    settings_schema = (
        *SimulatorDriver.settings_schema,
        SettingField("username", (str,), required=True),
        SettingField("password", (str,), required=True, secret=True),
    )

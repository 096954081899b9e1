"""Settings a driver marks secret are encrypted at rest, never shown back, and reach the driver in clear."""

import json

import pytest
from django.db import connection
from django.urls import reverse

from fabric import drivers
from fabric.models import FabricEndpoint
from fabric.services import endpoint_driver, endpoint_register
from tests import factories

DRIVER = "tests.drivers.credential_driver.CredentialSimulatorDriver"
PASSWORD = "hunter2-Very-Secret"


@pytest.fixture
def secret_endpoint(db, simulator_dir):
    options = {"path": str(simulator_dir / "cred.sqlite3"), "latency": 0, "username": "ops", "password": PASSWORD}
    endpoint, _ = endpoint_register(name="Vault", driver=DRIVER, settings_=options)
    return endpoint


def test_the_row_holds_no_clear_secret_and_the_driver_gets_it(secret_endpoint):
    with connection.cursor() as cursor:
        cursor.execute("SELECT settings::text, secret_settings::text FROM fabric_fabricendpoint")
        (row,) = cursor.fetchall()
    assert PASSWORD not in " ".join(row)
    assert "password" not in json.loads(row[0]) and set(json.loads(row[1])) == {"password"}
    stored = FabricEndpoint.objects.get(pk=secret_endpoint.pk)
    assert endpoint_driver(stored).settings["password"] == PASSWORD
    assert endpoint_driver(stored).settings["username"] == "ops"


def test_a_missing_secret_is_a_field_error(db, simulator_dir):
    with pytest.raises(Exception, match="required") as caught:
        endpoint_register(
            name="V", driver=DRIVER, settings_={"path": str(simulator_dir / "v.sqlite3"), "username": "u"}
        )
    assert "settings.password" in caught.value.message_dict


def test_the_api_and_the_page_show_the_secret_masked(secret_endpoint, staff_site, staff_user, client):
    factories.run_queued_jobs()
    client.force_login(staff_user)
    body = client.get(reverse("staff:endpoint", args=[secret_endpoint.pk])).content.decode()
    assert PASSWORD not in body and "•••••• (set)" in body and "ops" in body
    detail = client.get(reverse("staff-api:endpoint-detail", args=[secret_endpoint.pk])).json()
    assert detail["settings"]["password"] == "•••••• (set)" and detail["settings"]["username"] == "ops"
    assert PASSWORD not in json.dumps(detail)
    listing = client.get(reverse("staff-api:endpoint-list")).content.decode()
    assert PASSWORD not in listing


def test_registering_through_the_form_keeps_the_secret_off_the_page(staff_client, simulator_dir, monkeypatch):
    monkeypatch.setitem(drivers._BUILTIN, "credsim", DRIVER)
    options = {"path": str(simulator_dir / "form.sqlite3"), "username": "ops", "password": PASSWORD}
    response = staff_client.post(
        reverse("staff:endpoint-create"), {"name": "Form", "driver": "credsim", "settings": json.dumps(options)}
    )
    assert response.status_code == 302
    page = staff_client.get(response["Location"]).content.decode()
    assert PASSWORD not in page and "•••••• (set)" in page

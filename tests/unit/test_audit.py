"""The audit log's plumbing: entries commit with their change, refusals are kept, only changed fields
are recorded, who/where/which request come from the request, and secrets never appear."""

from __future__ import annotations

import json

import pytest
from django.db import connection, transaction
from django.urls import reverse
from rest_framework.test import APIClient

from fabric.models import VirtualMachine
from fabric.services import endpoint_register, vm_action
from portal import audit
from portal.exceptions import NotAllowed
from portal.models import AuditEntry, AuditOutcome
from tenants.models import Plan
from tenants.services import plan_create, plan_set_state, token_create, token_revoke
from tests import factories

pytestmark = pytest.mark.django_db

CREDENTIAL_DRIVER = "tests.drivers.credential_driver.CredentialSimulatorDriver"
ENDPOINT_PASSWORD = "hunter2-Very-Secret"


def entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("id"))


def test_an_entry_commits_and_rolls_back_with_its_change():
    with pytest.raises(RuntimeError), transaction.atomic():
        plan_create(name="Gone")
        assert len(entries("plan.create")) == 1  # written inside the change's transaction...
        raise RuntimeError("the caller's transaction fails")
    assert not Plan.objects.filter(name="Gone").exists()
    assert entries("plan.create") == []  # ...so it went with it


def test_a_refused_change_is_recorded_as_refused_and_changes_nothing(endpoint):
    plan = plan_create(name="Empty")
    with pytest.raises(NotAllowed, match="Add at least one service"):
        plan_set_state(plan=plan, state="public")
    plan.refresh_from_db()
    assert plan.state == "private"
    (entry,) = entries("plan.set_state")
    assert entry.outcome == AuditOutcome.REFUSED and "Add at least one service" in entry.message
    assert (entry.object_type, entry.object_id, entry.object_repr) == ("tenants.plan", str(plan.pk), "Empty")
    assert entry.changes == {}


def test_a_field_refusal_names_its_fields():
    with pytest.raises(Exception, match="needs a name"):
        plan_create(name="  ")
    (entry,) = entries("plan.create")
    assert entry.outcome == "refused" and entry.message == "name: A plan needs a name."


def test_an_unexpected_error_is_recorded_as_failed_without_its_text(monkeypatch, plan):
    def explode(*args, **kwargs):
        raise KeyError("internal detail")

    monkeypatch.setattr("tenants.services.plan_offers_any_service", explode)
    with pytest.raises(KeyError):
        plan_set_state(plan=plan, state="public")
    entry = entries("plan.set_state")[-1]
    assert entry.outcome == AuditOutcome.FAILED and entry.message == "Unexpected error (KeyError)."


def test_only_the_changed_fields_are_recorded_before_and_after(subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint, "web01")
    vm_action(vm=vm, action="stop")
    (entry,) = entries("vm.stop")
    assert entry.changes == {"state": ["running", "stopping"]}
    assert entry.subscription_id == subscription.pk and entry.object_repr == str(vm)
    created = entries("vm.create")[0]
    assert created.changes["name"] == [None, "web01"] and created.subscription_id == subscription.pk


def test_outside_a_request_the_actor_is_system_or_the_one_acting(tenant_user):
    plan_create(name="By the system")
    with audit.acting_as(tenant_user):
        token_create(user=tenant_user, name="cli")
    system, acting = entries("plan.create")[0], entries("token.create")[0]
    assert (system.actor_id, system.actor_label, system.site, system.request_id, system.ip) == (
        None,
        "system",
        "system",
        "",
        None,
    )
    assert acting.actor == tenant_user and acting.actor_label == "tenant@example.test"


def test_a_page_request_records_actor_ip_and_the_clients_request_id(tenant_client, tenant_user, subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint, "web01")
    response = tenant_client.post(
        reverse("tenant:vm-action", args=[vm.pk, "stop"]),
        headers={"X-Request-ID": "req-42.abc"},
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 302 and response["X-Request-ID"] == "req-42.abc"
    (entry,) = entries("vm.stop")
    assert (entry.actor, entry.actor_label, entry.ip, entry.request_id, entry.site) == (
        tenant_user,
        "tenant@example.test",
        "203.0.113.9",
        "req-42.abc",
        "tenant",
    )


def test_an_insane_request_id_is_replaced_and_every_answer_carries_one(tenant_client):
    response = tenant_client.get(reverse("tenant:dashboard"), headers={"X-Request-ID": "<script>" + "x" * 80})
    generated = response["X-Request-ID"]
    assert len(generated) == 32 and generated.isalnum()
    assert tenant_client.get("/api/v1/nowhere/")["X-Request-ID"]


def test_an_api_token_request_records_the_tokens_account(tenant_user, subscription, endpoint):
    """DRF authenticates the token after the middleware ran: the actor is read when the entry is written."""
    vm = factories.make_vm(subscription, endpoint, "web01")
    _, secret = token_create(user=tenant_user, name="ci", scope="write")
    client = APIClient()
    response = client.post(
        reverse("tenant-api:vm-stop", args=[vm.pk]),
        headers={"Authorization": f"Bearer {secret}", "X-Request-ID": "ci-7"},
    )
    assert response.status_code == 202, response.content
    (entry,) = entries("vm.stop")
    assert entry.actor == tenant_user and entry.request_id == "ci-7" and entry.ip == "127.0.0.1"


def test_sign_in_success_failure_and_sign_out_are_recorded_without_the_password(client, tenant_user):
    client.post(reverse("login"), {"username": "tenant@example.test", "password": "Wrong-Guess-99"})
    client.post(reverse("login"), {"username": "tenant@example.test", "password": factories.PASSWORD})
    client.post(reverse("logout"))
    failed, signed_in = entries("account.sign_in")[-2:]
    assert failed.outcome == "refused" and failed.object_repr == "tenant@example.test" and failed.actor is None
    assert signed_in.outcome == "succeeded" and signed_in.actor == tenant_user
    assert entries("account.sign_out")[-1].actor == tenant_user
    dump = json.dumps(list(AuditEntry.objects.values()), default=str)
    assert "Wrong-Guess-99" not in dump and factories.PASSWORD not in dump


def test_secrets_never_appear_in_any_entry(tenant_client, tenant_user, subscription, endpoint, simulator_dir):
    """A VM's admin password, an endpoint's secret settings and an API token: created and changed
    through the services, then every audit row's text is searched for them."""
    from fabric.services import endpoint_sync

    factories.make_vm(subscription, endpoint, "web01")  # admin password factories.VM_PASSWORD
    options = {"path": str(simulator_dir / "vault.sqlite3"), "latency": 0, "username": "ops"}
    vault, _ = endpoint_register(
        name="Vault", driver=CREDENTIAL_DRIVER, settings_={**options, "password": ENDPOINT_PASSWORD}
    )
    factories.run_queued_jobs()
    endpoint_sync(endpoint=vault)
    token, secret = token_create(user=tenant_user, name="ci", scope="write")
    token_revoke(token=token)
    from tenants.services import signup_invitation_create

    _, invitation_code, _ = signup_invitation_create(by=None, email="invited@example.test", link=str)
    new_password = "Brand-New-Pass-42"
    changed = tenant_client.post(
        reverse("password-change"),
        {"old_password": factories.PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )
    assert changed.status_code == 302
    page_token = tenant_client.post(reverse("tenant:tokens"), {"name": "page", "scope": "read"})
    assert page_token.status_code == 201

    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(e)::text FROM portal_auditentry e")
        rows = [row[0] for row in cursor.fetchall()]
    assert len(rows) >= 8
    tenant_user.refresh_from_db()  # its new password hash
    text = "\n".join(rows)
    page_secret = page_token.content.decode().split('<code id="new-token">', 1)[1].split("<", 1)[0]
    assert page_secret.startswith("cnp_") and len(page_secret) > 20
    secrets = (factories.VM_PASSWORD, ENDPOINT_PASSWORD, secret, secret[len("cnp_") :], page_secret, token.digest)
    for value in (*secrets, invitation_code, new_password, tenant_user.password):
        assert value not in text
    register = entries("endpoint.register")[-1]
    assert register.changes["secret_settings"] == [None, "[redacted]"]
    assert entries("token.create")[0].changes["digest"] == [None, "[redacted]"]


def test_json_keys_that_look_secret_are_redacted_at_any_depth():
    value = audit._plain({"path": "/x", "nested": {"api_key": "k1", "items": [{"password": "p"}]}})
    assert value == {"path": "/x", "nested": {"api_key": "[redacted]", "items": [{"password": "[redacted]"}]}}


def test_a_bulk_action_records_each_vm_on_its_own(subscription, endpoint):
    from fabric.services import vm_bulk_action

    running = factories.make_vm(subscription, endpoint, "running")
    stopped = factories.make_vm(subscription, endpoint, "stopped")
    vm_action(vm=stopped, action="stop")
    factories.run_queued_jobs()
    vm_bulk_action(vms=list(VirtualMachine.objects.filter(pk__in=[running.pk, stopped.pk])), action="stop")
    outcomes = {e.object_id: e.outcome for e in entries("vm.stop")[1:]}
    assert outcomes == {str(running.pk): "succeeded", str(stopped.pk): "refused"}


def test_the_client_address_follows_the_sign_in_lockouts_proxy_settings(settings, tenant_client, tenant_user):
    """Behind a proxy, whatever tells django-axes the client's address tells the audit log too."""
    settings.AXES_CLIENT_IP_CALLABLE = lambda request: request.META.get("HTTP_X_REAL_IP")
    tenant_client.post(reverse("tenant:tokens"), {"name": "proxied", "scope": "read"}, HTTP_X_REAL_IP="192.0.2.44")
    tenant_client.post(reverse("tenant:tokens"), {"name": "garbled", "scope": "read"}, HTTP_X_REAL_IP="not-an-ip")
    proxied, garbled = entries("token.create")
    assert proxied.ip == "192.0.2.44" and garbled.ip is None


def test_an_audited_service_a_job_calls_acts_for_the_jobs_creator(monkeypatch, tenant_user, subscription, endpoint):
    """Work a job does (e.g. a subscription's lifecycle fanning out to its VMs) is recorded as done by
    whoever started the job, not by "system"."""
    from portal.jobs import _handlers

    vm = factories.make_vm(subscription, endpoint, "web01")
    other = factories.make_vm(subscription, endpoint, "other")
    handler = _handlers["vm.restart"]
    original = handler.run

    def run_and_stop_another(ctx):
        vm_action(vm=other, action="stop")
        return original(ctx)

    monkeypatch.setattr(handler, "run", run_and_stop_another)
    vm_action(vm=vm, action="restart", created_by=tenant_user)
    factories.run_queued_jobs()
    (stop,) = entries("vm.stop")
    assert stop.actor == tenant_user and stop.site == "system"


def test_a_quota_refusal_is_kept_with_its_subscription_for_the_tenant_to_see(tenant_user, endpoint):
    from portal.exceptions import QuotaExceeded

    sub = factories.make_subscription(tenant_user, factories.make_plan(endpoint, max_vms=1))
    factories.make_vm(sub, endpoint, "one", run=False)
    with pytest.raises(QuotaExceeded):
        factories.make_vm(sub, endpoint, "two", run=False)
    refused = entries("vm.create")[-1]
    assert refused.outcome == "refused" and "Quota exceeded" in refused.message
    assert refused.subscription_id == sub.pk and refused.object_id == ""
    assert refused in AuditEntry.objects.visible_to(tenant_user)
    assert not VirtualMachine.objects.filter(name="two").exists()


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("admin_password", True),
        ("secret_settings", True),
        ("apiKey", True),
        ("ssh_key", True),
        ("digest", True),
        ("refresh_token", True),
        ("clientSecret", True),
        ("otp_device", True),
        ("passive", False),
        ("monkey", False),
        ("keyboard", False),
        ("prefix", False),
        ("state", False),
        ("settings", False),
    ],
)
def test_which_names_are_secret(name, secret):
    assert audit.is_secret_name(name) is secret

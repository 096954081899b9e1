"""Every mutating route writes the audit log, generated from both sites' URLconfs (pages and APIs).

Each route is either
- in MUTATIONS, with a valid request per method it mutates with: sent by a permitted user (with an
  X-Request-ID and a client address), it must succeed and write an entry of the expected action
  with that actor, request id and address; or
- not a mutation: then POST, PUT, PATCH and DELETE (with a body, so a form would be bound) must
  each answer 405, or answer as GET does (a page that ignores the method) without writing anything
  and without a form or API error; or
- in NOT_AUDITED, with the reason.

So a new route that accepts a write fails here, by name, until it is mapped, and a mapped route
whose service writes no entry fails too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import include, path, reverse
from django.views.decorators.http import require_POST

from fabric.lifecycle import VM_ACTIONS
from fabric.models import Cloud
from fabric.services import vm_action
from portal.models import AuditEntry, Job, JobState
from tenants.models import Plan
from tenants.services import (
    account_lock,
    addon_save,
    coadmin_add,
    email_verification_token,
    plan_invitation_rotate,
    signup_invitation_create,
    staff_account_create,
    token_create,
)
from tests import factories
from tests.architecture.test_isolation import Route, object_routes

pytestmark = pytest.mark.django_db

URLCONFS = {"staff": "portal.urls.staff", "tenant": "portal.urls.tenant"}
WRITE_METHODS = ("post", "put", "patch", "delete")
CLIENT_IP = "198.51.100.7"
# Writes a request may make that aren't a change anyone audits: the session, django-axes' counters.
BOOKKEEPING_TABLES = ("django_session", "axes_")

# Routes that accept a write method but change nothing worth an entry, each with why.
NOT_AUDITED: dict[tuple[str, str], str] = {}


@dataclass
class World:
    """What the requests act on: one of everything, in the states the actions need."""

    staff: Any
    tenant: Any
    endpoint: Any
    plan: Any
    other_plan: Any
    private_plan: Any
    subscription: Any
    running: Any
    stopped: Any
    failed_job: Any
    queued_job: Any
    tokens: dict[str, Any]
    entry: Any
    cloud: Any
    invitation: Any
    coadmin: Any
    helper: Any
    operator: Any
    addon: Any = None
    invitation_code: str = ""

    def objects(self) -> dict[str, str]:
        """The id a route's bare `pk` stands for, by the route name's first word."""
        return {
            "job": str(self.failed_job.pk),
            "vm": str(self.running.pk),
            "vms": str(self.running.pk),
            "subscription": str(self.subscription.pk),
            "plan": str(self.plan.pk),
            "token": str(self.tokens["tenant"].pk),
            "audit": str(self.entry.pk),
            "endpoint": str(self.endpoint.pk),
            "cloud": str(self.cloud.pk),
            "account": str(self.tenant.pk),
            "invitation": str(self.invitation.pk),
            "staff": str(self.operator.pk),
            "addon": str(self.addon.pk),
        }


@pytest.fixture
def world(staff_user, tenant_user, endpoint, plan, subscription, monkeypatch) -> World:
    running = factories.make_vm(subscription, endpoint, "running")
    stopped = factories.make_vm(subscription, endpoint, "stopped")
    vm_action(vm=stopped, action="stop")
    factories.run_queued_jobs()
    restore = factories.fabric_refuses(monkeypatch, "create_vm")
    _, failed_job = factories.make_vm_job(subscription, endpoint, "failed")
    factories.run_queued_jobs()
    restore()
    queued = factories.make_vm(subscription, endpoint, "queued", run=False)
    helper = factories.UserFactory(email="helper@example.test")
    failed_job.refresh_from_db()
    assert failed_job.state == JobState.FAILED
    stopped.refresh_from_db()
    w = World(
        staff=staff_user,
        tenant=tenant_user,
        endpoint=endpoint,
        plan=plan,
        other_plan=factories.make_plan(endpoint),
        private_plan=factories.make_plan(endpoint, public=False),
        subscription=subscription,
        running=running,
        stopped=stopped,
        failed_job=failed_job,
        queued_job=Job.objects.get(target_id=str(queued.pk)),
        tokens={
            "staff": token_create(user=staff_user, name="staff-token")[0],
            "tenant": token_create(user=tenant_user, name="tenant-token")[0],
        },
        entry=AuditEntry.objects.filter(subscription=subscription).first(),
        cloud=Cloud.objects.get(stamp__endpoint=endpoint, name="Gold"),
        invitation=signup_invitation_create(by=staff_user, email="invited@example.test", link=str)[0],
        coadmin=coadmin_add(subscription=subscription, by=tenant_user, email=helper.email),
        helper=factories.UserFactory(email="helper2@example.test"),
        operator=staff_account_create(email="operator@example.test", role="operator", password=factories.PASSWORD),
        addon=addon_save(name="World pack", plans=[plan], max_per_subscription=3, quotas={"vm_cloud": {"cores": 4}}),
    )
    w.invitation_code = plan_invitation_rotate(plan=w.private_plan)
    return w


@dataclass(frozen=True)
class Case:
    """A valid request of one route: its kwargs and body from the world, the action it records."""

    action: str
    kwargs: Callable[[World], dict[str, Any]] = lambda w: {}
    body: Callable[[World], dict[str, Any]] = lambda w: {}
    method: str = "post"
    anonymous: bool = False  # sent signed out (sign-in, sign-up)
    actor: Callable[[World, str], Any] = field(default=lambda w, site: getattr(w, site))
    # a request to make first with the same client (a reset link puts its token in the session)
    before: Callable[[World, Client], str | None] = lambda w, client: None


def _vm_form(w: World) -> dict[str, Any]:
    template, size = factories.catalog(w.endpoint)
    return {
        "subscription": str(w.subscription.pk),
        "name": "new-vm",
        "template": template.pk,
        "hardware_profile": size.pk,
        "admin_username": "canopy",
        "admin_password": factories.VM_PASSWORD,
        "admin_password_confirm": factories.VM_PASSWORD,
    }


def _vm_for(action: str) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"pk": (w.stopped if action == "start" else w.running).pk}


def _sign_in(site: str) -> Case:
    return Case(
        "account.sign_in",
        body=lambda w: {"username": getattr(w, site).email, "password": factories.PASSWORD},
        anonymous=True,
    )


def _endpoint_form(w: World) -> dict[str, Any]:
    return {"name": "Lab", "driver": "simulator", "settings": json.dumps({"latency": 0})}


pk = lambda obj: lambda w: {"pk": obj(w).pk}  # noqa: E731


def _reset_link(user: Any, token: str | None = None) -> dict[str, str]:
    """A password reset link's kwargs (Django swaps the token for "set-password" once it is in the session)."""
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    return {
        "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": token or default_token_generator.make_token(user),
    }


def _totp_code(user: Any) -> str:
    """The code an authenticator app shows for the device the enrolment page just made."""
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user).order_by("-pk").first()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def _suspended(w: World) -> None:
    from tenants.services import subscription_suspend

    subscription_suspend(subscription=w.subscription, reason="Unpaid", by=w.staff)
    factories.run_queued_jobs()


def _out_of_sync(w: World) -> None:
    """Suspended while a VM was still being created: the suspension couldn't stop it."""
    _suspended(w)
    w.subscription.refresh_from_db()
    assert w.subscription.sync_action, "the world's subscription should be out of sync"


def _unverified(user: Any) -> Any:
    type(user).objects.filter(pk=user.pk).update(email_verified_at=None)
    user.refresh_from_db()
    return user


def _held_addon(w: World) -> None:
    """The subscription holds one of the world's add-on (to remove it)."""
    from tenants.services import subscription_addon_buy

    subscription_addon_buy(subscription=w.subscription, addon=w.addon, user=w.tenant)


# (site, route name) -> the valid requests that mutate through it.
MUTATIONS: dict[tuple[str, str], list[Case]] = {
    # --- both sites' own pages
    **{(site, "login"): [_sign_in(site)] for site in URLCONFS},
    **{(site, "logout"): [Case("account.sign_out")] for site in URLCONFS},
    ("tenant", "signup"): [
        Case(
            "account.create",
            body=lambda w: {
                "full_name": "New",
                "email": "new@example.test",
                "password": "Sign-Up-Pass-1",
                "password_confirm": "Sign-Up-Pass-1",
            },
            anonymous=True,
            actor=lambda w, site: None,
        )
    ],
    **{(site, f"{site}:job-retry"): [Case("job.retry", kwargs=pk(lambda w: w.failed_job))] for site in URLCONFS},
    ("staff", "staff:job-cancel"): [Case("job.cancel", kwargs=pk(lambda w: w.queued_job))],
    **{
        (site, f"{site}:tokens"): [Case("token.create", body=lambda w: {"name": "page", "scope": "read"})]
        for site in URLCONFS
    },
    **{
        (site, f"{site}:token-revoke"): [
            Case("token.revoke", kwargs=lambda w, site=site: {"pk": w.tokens[site].pk})  # type: ignore[misc]
        ]
        for site in URLCONFS
    },
    # --- staff pages
    ("staff", "staff:endpoint-create"): [Case("endpoint.register", body=_endpoint_form)],
    ("staff", "staff:endpoint-sync"): [Case("endpoint.sync", kwargs=pk(lambda w: w.endpoint))],
    ("staff", "staff:plan-create"): [
        Case("plan.create", body=lambda w: {"name": "New plan", "max_subscriptions_per_account": 1})
    ],
    ("staff", "staff:plan-edit"): [
        Case(
            "plan.update",
            kwargs=pk(lambda w: w.plan),
            body=lambda w: {"name": "Renamed", "description": "", "max_subscriptions_per_account": 2},
        )
    ],
    ("staff", "staff:plan-service"): [
        Case(
            "plan.service.set",
            kwargs=lambda w: {"pk": w.plan.pk, "service": "vm_cloud"},
            body=lambda w: {"vm_cloud-offer-cloud": w.cloud.pk, "vm_cloud-quota-vms": 20},
        )
    ],
    ("staff", "staff:plan-service-remove"): [
        Case("plan.service.remove", kwargs=lambda w: {"pk": w.private_plan.pk, "service": "vm_cloud"})
    ],
    ("staff", "staff:plan-clone"): [Case("plan.clone", kwargs=pk(lambda w: w.plan), body=lambda w: {"name": "Copy"})],
    ("staff", "staff:plan-invitation"): [
        Case("plan.invitation.rotate", kwargs=pk(lambda w: w.private_plan)),
        Case("plan.invitation.clear", kwargs=pk(lambda w: w.private_plan), body=lambda w: {"action": "clear"}),
    ],
    ("staff", "staff:addon-create"): [
        Case(
            "addon.save",
            body=lambda w: {"name": "New pack", "max_per_subscription": 1, "plans": [w.plan.pk], "vm_cloud__cores": 2},
        )
    ],
    ("staff", "staff:addon"): [
        Case(
            "addon.save",
            kwargs=pk(lambda w: w.addon),
            body=lambda w: {"name": "Pack 2", "max_per_subscription": 3, "plans": [w.plan.pk], "vm_cloud__cores": 2},
        )
    ],
    ("staff", "staff:addon-state"): [
        Case("addon.set_state", kwargs=pk(lambda w: w.addon), body=lambda w: {"state": "retired"})
    ],
    ("staff", "staff:plan-state"): [
        Case("plan.set_state", kwargs=pk(lambda w: w.private_plan), body=lambda w: {"state": "public"})
    ],
    # --- staff API
    ("staff", "staff-api:job-retry"): [Case("job.retry", kwargs=pk(lambda w: w.failed_job))],
    ("staff", "staff-api:job-cancel"): [Case("job.cancel", kwargs=pk(lambda w: w.queued_job))],
    ("staff", "staff-api:endpoint-list"): [
        Case("endpoint.register", body=lambda w: {"name": "Lab", "driver": "simulator", "settings": {"latency": 0}})
    ],
    ("staff", "staff-api:endpoint-sync"): [Case("endpoint.sync", kwargs=pk(lambda w: w.endpoint))],
    ("staff", "staff-api:plan-list"): [Case("plan.create", body=lambda w: {"name": "API plan"})],
    ("staff", "staff-api:plan-state"): [
        Case("plan.set_state", kwargs=pk(lambda w: w.private_plan), body=lambda w: {"state": "public"})
    ],
    ("staff", "staff-api:plan-detail"): [
        Case("plan.update", method="patch", kwargs=pk(lambda w: w.plan), body=lambda w: {"name": "API renamed"})
    ],
    ("staff", "staff-api:plan-clone"): [
        Case("plan.clone", kwargs=pk(lambda w: w.plan), body=lambda w: {"name": "API copy"})
    ],
    ("staff", "staff-api:plan-invitation"): [
        Case("plan.invitation.rotate", kwargs=pk(lambda w: w.private_plan)),
        Case("plan.invitation.clear", method="delete", kwargs=pk(lambda w: w.private_plan)),
    ],
    ("staff", "staff-api:plan-service"): [
        Case(
            "plan.service.set",
            method="put",
            kwargs=lambda w: {"pk": w.plan.pk, "service": "vm_cloud"},
            body=lambda w: {"offer": {"cloud": w.cloud.pk}, "quotas": {"vms": 20}},
        ),
        Case(
            "plan.service.remove",
            method="delete",
            kwargs=lambda w: {"pk": w.private_plan.pk, "service": "vm_cloud"},
        ),
    ],
    ("staff", "staff-api:addon-list"): [
        Case(
            "addon.save",
            body=lambda w: {"name": "API pack", "plans": [w.plan.pk], "quotas": {"vm_cloud": {"cores": 2}}},
        )
    ],
    ("staff", "staff-api:addon-detail"): [
        Case(
            "addon.save",
            method="put",
            kwargs=pk(lambda w: w.addon),
            body=lambda w: {"name": "API pack 2", "plans": [w.plan.pk], "quotas": {"vm_cloud": {"cores": 2}}},
        )
    ],
    ("staff", "staff-api:addon-state"): [
        Case("addon.set_state", kwargs=pk(lambda w: w.addon), body=lambda w: {"state": "retired"})
    ],
    # --- tenant pages
    ("tenant", "tenant:plan-subscribe"): [Case("subscription.create", kwargs=pk(lambda w: w.other_plan))],
    ("tenant", "tenant:plan-join"): [
        Case("subscription.create", body=lambda w: {"invitation_code": w.invitation_code})
    ],
    ("tenant", "tenant:subscription-addon-buy"): [
        Case("subscription.addon.buy", kwargs=lambda w: {"pk": w.subscription.pk, "addon_pk": w.addon.pk})
    ],
    ("tenant", "tenant:subscription-addon-remove"): [
        Case(
            "subscription.addon.remove",
            kwargs=lambda w: {"pk": w.subscription.pk, "addon_pk": w.addon.pk},
            before=lambda w, client: _held_addon(w),
        )
    ],
    ("tenant", "tenant-api:subscription-addons"): [
        Case("subscription.addon.buy", kwargs=pk(lambda w: w.subscription), body=lambda w: {"addon": w.addon.pk})
    ],
    ("tenant", "tenant-api:subscription-addon-remove"): [
        Case(
            "subscription.addon.remove",
            method="delete",
            kwargs=lambda w: {"pk": w.subscription.pk, "addon_pk": w.addon.pk},
            before=lambda w, client: _held_addon(w),
        )
    ],
    ("tenant", "tenant:vm-create"): [Case("vm.create", body=_vm_form)],
    ("tenant", "tenant:vm-bulk-action"): [
        Case("vm.stop", body=lambda w: {"action": "stop", "vm": str(w.running.pk)}),
        Case("vm.delete", body=lambda w: {"action": "delete", "vm": str(w.running.pk), "confirm": "yes"}),
    ],
    ("tenant", "tenant:vm-action"): [
        Case(f"vm.{name}", kwargs=lambda w, name=name: {**_vm_for(name)(w), "action": name})  # type: ignore[misc]
        for name in VM_ACTIONS
    ],
    # --- tenant API
    ("tenant", "tenant-api:job-retry"): [Case("job.retry", kwargs=pk(lambda w: w.failed_job))],
    ("tenant", "tenant-api:vm-list"): [
        Case("vm.create", body=lambda w: {k: v for k, v in _vm_form(w).items() if k != "admin_password_confirm"})
    ],
    ("tenant", "tenant-api:vm-detail"): [Case("vm.delete", method="delete", kwargs=pk(lambda w: w.running))],
    # (deleting is DELETE on the VM, above)
    **{
        ("tenant", f"tenant-api:vm-{name}"): [Case(f"vm.{name}", kwargs=_vm_for(name))]
        for name in VM_ACTIONS
        if name != "delete"
    },
    # --- accounts: passwords, email verification, sign-up invitations, provider settings
    **{
        (site, "password-change"): [
            Case(
                "account.password_change",
                body=lambda w: {
                    "old_password": factories.PASSWORD,
                    "new_password1": "Brand-New-Pass-42",
                    "new_password2": "Brand-New-Pass-42",
                },
            )
        ]
        for site in URLCONFS
    },
    **{
        (site, "password-reset"): [
            Case(
                "account.password_reset_request",
                body=lambda w, site=site: {"email": getattr(w, site).email},  # type: ignore[misc]
                anonymous=True,
                actor=lambda w, site: None,
            )
        ]
        for site in URLCONFS
    },
    **{
        (site, "password-reset-confirm"): [
            Case(
                "account.password_reset",
                kwargs=lambda w, site=site: _reset_link(getattr(w, site), "set-password"),  # type: ignore[misc]
                body=lambda w: {"new_password1": "Brand-New-Pass-42", "new_password2": "Brand-New-Pass-42"},
                anonymous=True,
                before=lambda w, client, site=site: reverse(  # type: ignore[misc]
                    "password-reset-confirm", kwargs=_reset_link(getattr(w, site))
                ),
            )
        ]
        for site in URLCONFS
    },
    ("tenant", "verify-email"): [
        Case(
            "account.verify_email",
            method="get",
            kwargs=lambda w: {"token": email_verification_token(_unverified(w.tenant))},
        )
    ],
    ("tenant", "verify-email-resend"): [
        Case("account.verification_send", before=lambda w, client: _unverified(w.tenant) and None)
    ],
    ("staff", "staff:settings"): [Case("settings.update", body=lambda w: {"signup_policy": "invitation"})],
    ("staff", "staff-api:settings"): [
        Case("settings.update", method="put", body=lambda w: {"signup_policy": "closed"})
    ],
    ("staff", "staff:invitations"): [
        Case("invitation.create", body=lambda w: {"email": "someone@example.test", "valid_days": 7})
    ],
    ("staff", "staff-api:invitation-list"): [
        Case("invitation.create", body=lambda w: {"email": "someone@example.test", "valid_days": 7})
    ],
    ("staff", "staff:invitation-revoke"): [Case("invitation.revoke", kwargs=pk(lambda w: w.invitation))],
    ("staff", "staff-api:invitation-revoke"): [Case("invitation.revoke", kwargs=pk(lambda w: w.invitation))],
    # --- co-administrators
    ("tenant", "tenant:subscription-coadmins"): [
        Case("coadmin.add", kwargs=pk(lambda w: w.subscription), body=lambda w: {"email": w.helper.email})
    ],
    ("tenant", "tenant-api:subscription-coadmins"): [
        Case("coadmin.add", kwargs=pk(lambda w: w.subscription), body=lambda w: {"email": w.helper.email})
    ],
    ("tenant", "tenant:subscription-coadmin-remove"): [
        Case("coadmin.remove", kwargs=lambda w: {"pk": w.subscription.pk, "coadmin_pk": w.coadmin.pk})
    ],
    ("tenant", "tenant-api:subscription-coadmin-remove"): [
        Case(
            "coadmin.remove",
            method="delete",
            kwargs=lambda w: {"pk": str(w.subscription.pk), "coadmin_pk": str(w.coadmin.pk)},
        )
    ],
    # --- the subscription lifecycle (staff), cancel (tenant)
    ("staff", "staff:subscription-create"): [
        Case(
            "subscription.create", body=lambda w: {"owner": w.tenant.email, "plan": w.other_plan.pk, "name": "By staff"}
        )
    ],
    ("staff", "staff-api:subscription-list"): [
        Case("subscription.create", body=lambda w: {"owner": w.tenant.pk, "plan": w.other_plan.pk, "name": "By staff"})
    ],
    ("staff", "staff:subscription-delete"): [Case("subscription.delete", kwargs=pk(lambda w: w.subscription))],
    ("staff", "staff-api:subscription-detail"): [
        Case("subscription.delete", method="delete", kwargs=pk(lambda w: w.subscription))
    ],
    ("staff", "staff:subscription-action"): [
        Case(
            "subscription.suspend",
            kwargs=lambda w: {"pk": w.subscription.pk, "action": "suspend"},
            body=lambda w: {"reason": "Unpaid invoice"},
        ),
        Case(
            "subscription.activate",
            kwargs=lambda w: {"pk": w.subscription.pk, "action": "activate"},
            before=lambda w, client: _suspended(w),
        ),
        Case(
            "subscription.resync",
            kwargs=lambda w: {"pk": w.subscription.pk, "action": "resync"},
            before=lambda w, client: _out_of_sync(w),
        ),
    ],
    ("staff", "staff:subscription-change-plan"): [
        Case("subscription.change_plan", kwargs=pk(lambda w: w.subscription), body=lambda w: {"plan": w.other_plan.pk})
    ],
    # --- tenant accounts and staff accounts (administrators), sign-in security
    **{
        ("staff", f"staff{api}:account-lock"): [Case("account.lock", kwargs=pk(lambda w: w.tenant))]
        for api in ("", "-api")
    },
    **{
        ("staff", f"staff{api}:account-unlock"): [
            Case(
                "account.unlock",
                kwargs=pk(lambda w: w.tenant),
                before=lambda w, client: account_lock(account=w.tenant) and None,
            )
        ]
        for api in ("", "-api")
    },
    ("staff", "staff:account-password"): [Case("account.password_reset_by_staff", kwargs=pk(lambda w: w.tenant))],
    ("staff", "staff-api:account-reset-password"): [
        Case("account.password_reset_by_staff", kwargs=pk(lambda w: w.tenant))
    ],
    ("staff", "staff:account-delete"): [Case("account.delete", kwargs=pk(lambda w: w.helper))],
    ("staff", "staff-api:account-detail"): [Case("account.delete", method="delete", kwargs=pk(lambda w: w.helper))],
    ("staff", "staff:staff-account-create"): [
        Case(
            "staff_account.create", body=lambda w: {"email": "ops@example.test", "full_name": "Ops", "role": "operator"}
        )
    ],
    ("staff", "staff-api:staff-account-list"): [
        Case("staff_account.create", body=lambda w: {"email": "ops@example.test", "role": "operator"})
    ],
    **{
        ("staff", f"staff{api}:staff-account-role"): [
            Case("staff_account.set_role", kwargs=pk(lambda w: w.operator), body=lambda w: {"role": "administrator"})
        ]
        for api in ("", "-api")
    },
    **{
        ("staff", f"staff{api}:staff-account-deactivate"): [
            Case("staff_account.deactivate", kwargs=pk(lambda w: w.operator))
        ]
        for api in ("", "-api")
    },
    **{
        ("staff", f"staff{api}:staff-account-activate"): [
            Case(
                "staff_account.activate",
                kwargs=pk(lambda w: w.operator),
                before=lambda w, client: (
                    type(w.operator).objects.filter(pk=w.operator.pk).update(is_active=False) and None
                ),
            )
        ]
        for api in ("", "-api")
    },
    ("staff", "staff:staff-account-two-factor-reset"): [
        Case("account.two_factor_reset", kwargs=pk(lambda w: w.operator))
    ],
    ("staff", "staff-api:staff-account-reset-two-factor"): [
        Case("account.two_factor_reset", kwargs=pk(lambda w: w.operator))
    ],
    ("staff", "staff:two-factor"): [
        Case(
            "account.two_factor_enrol",
            body=lambda w: {"code": _totp_code(w.staff)},
            before=lambda w, client: "/two-factor/",
        )
    ],
    ("staff", "staff:signin-lockout-release"): [
        Case("account.lockout_release", body=lambda w: {"username": w.tenant.email, "ip_address": "203.0.113.1"})
    ],
    ("staff", "staff-api:subscription-suspend"): [
        Case("subscription.suspend", kwargs=pk(lambda w: w.subscription), body=lambda w: {"reason": "Unpaid"})
    ],
    ("staff", "staff-api:subscription-activate"): [
        Case("subscription.activate", kwargs=pk(lambda w: w.subscription), before=lambda w, client: _suspended(w))
    ],
    ("staff", "staff-api:subscription-resync"): [
        Case("subscription.resync", kwargs=pk(lambda w: w.subscription), before=lambda w, client: _out_of_sync(w))
    ],
    ("staff", "staff-api:subscription-change-plan"): [
        Case("subscription.change_plan", kwargs=pk(lambda w: w.subscription), body=lambda w: {"plan": w.other_plan.pk})
    ],
    ("tenant", "tenant:subscription-cancel"): [
        Case(
            "subscription.cancel",
            kwargs=pk(lambda w: w.subscription),
            body=lambda w: {"confirm_name": w.subscription.name},
        )
    ],
    ("tenant", "tenant-api:subscription-cancel"): [
        Case(
            "subscription.cancel",
            kwargs=pk(lambda w: w.subscription),
            body=lambda w: {"confirm_name": w.subscription.name},
        )
    ],
    ("tenant", "tenant-api:subscription-list"): [
        Case("subscription.create", body=lambda w: {"plan": w.other_plan.pk, "name": "Second"})
    ],
}


def all_routes() -> list[tuple[str, Route]]:
    return [
        (site, route) for site, urlconf in URLCONFS.items() for route in object_routes(urlconf, with_kwargs_only=False)
    ]


ROUTES = all_routes()
MAPPED = [(site, name, i, case) for (site, name), cases in MUTATIONS.items() for i, case in enumerate(cases)]
UNMAPPED = [(site, route) for site, route in ROUTES if (site, route.name) not in MUTATIONS | NOT_AUDITED]


def use_site(settings: Any, site: str) -> None:
    settings.CANOPY_SITE = site
    settings.ROOT_URLCONF = URLCONFS[site]
    settings.SESSION_COOKIE_NAME = f"canopy_{site}_session"
    settings.CSRF_COOKIE_NAME = f"canopy_{site}_csrftoken"
    settings.LOGIN_REDIRECT_URL = f"{site}:dashboard"


def client_for(user: Any) -> Client:
    client = Client(REMOTE_ADDR=CLIENT_IP)
    if user is not None:
        client.force_login(user, backend="portal.auth.SiteBackend")
    return client


def send(client: Client, method: str, url: str, body: dict[str, Any], request_id: str) -> HttpResponse:
    headers = {"X-Request-ID": request_id}
    if url.startswith("/api/"):
        return getattr(client, method)(url, json.dumps(body), content_type="application/json", headers=headers)
    if method == "get":
        return client.get(url, headers=headers)
    if method == "post":
        return client.post(url, body, headers=headers)
    return getattr(client, method)(url, headers=headers)


def test_the_table_names_only_routes_that_exist():
    names = {(site, route.name) for site, route in ROUTES}
    assert set(MUTATIONS) - names == set() and set(NOT_AUDITED) - names == set()


def test_the_walk_sees_both_sites_pages_and_apis():
    names = {(site, route.name) for site, route in ROUTES}
    assert {("staff", "staff:plan-create"), ("staff", "staff-api:plan-list"), ("tenant", "tenant-api:vm-stop")} <= names
    assert {("tenant", "tenant:audit"), ("staff", "staff-api:audit-entry-list")} <= names


@pytest.mark.parametrize(("site", "name", "index", "case"), MAPPED, ids=[f"{s}/{n}/{i}" for s, n, i, _ in MAPPED])
def test_a_mutating_route_writes_an_audit_entry(site, name, index, case, world, settings):
    use_site(settings, site)
    exercise(site, name, index, case, world)


def exercise(site: str, name: str, index: int, case: Case, world: World) -> None:
    user = getattr(world, site)
    client = client_for(None if case.anonymous else user)
    url = reverse(name, kwargs=case.kwargs(world))
    request_id = f"audit-{site}-{index}"
    if first := case.before(world, client):
        client.get(first)
    response = send(client, case.method, url, case.body(world), request_id)
    assert response.status_code in (200, 201, 202, 204, 302), (
        f"{case.method.upper()} {url} answered {response.status_code}: {response.content[:300]!r}"
    )
    assert response["X-Request-ID"] == request_id
    written = list(AuditEntry.objects.filter(request_id=request_id, action=case.action))
    others = list(AuditEntry.objects.filter(request_id=request_id).values_list("action", "outcome"))
    assert written, (
        f"{name} ({case.method.upper()} {url}, answered {response.status_code}) wrote no '{case.action}' audit "
        f"entry (only {others}): decorate its service with portal.audit.audited, or fix the table's request"
    )
    entry = written[-1]
    assert entry.outcome == "succeeded", entry.message
    assert entry.actor == case.actor(world, site)
    assert entry.ip == CLIENT_IP and entry.site == site


def is_write(sql: str) -> bool:
    statement = sql.lstrip().upper()
    if not statement.startswith(("INSERT", "UPDATE", "DELETE")):
        return False
    return not any(f'"{table}' in sql for table in BOOKKEEPING_TABLES)


def looks_refused(response: HttpResponse) -> bool:
    """A bound form's errors, a message of failure, or an API's error body: the route took the write."""
    if response.status_code == 400:
        return True
    body = response.content.decode(errors="replace")
    return any(mark in body for mark in ('class="errorlist"', 'class="form-errors"', "message-error"))


def write_probe(client: Client, route_name: str, url: str) -> list[str]:
    """Why the route looks like it takes writes (empty: it doesn't)."""
    problems = []
    reference = client.get(url)
    for method in WRITE_METHODS:
        body = {} if url.startswith("/api/") else {"probe": "1"}
        with CaptureQueriesContext(connection) as queries:
            response = send(client, method, url, body, "probe")
        if response.status_code == 405:
            continue
        writes = [q["sql"][:80] for q in queries.captured_queries if is_write(q["sql"])]
        if writes or looks_refused(response) or response.status_code != reference.status_code:
            problems.append(
                f"{route_name}: {method.upper()} {url} answered {response.status_code}"
                + (f" and wrote {writes}" if writes else "")
                + " — it takes writes: add it to MUTATIONS in tests/architecture/test_audit_routes.py with a"
                " valid request (and audit its service), or to NOT_AUDITED with why"
            )
    return problems


@pytest.mark.parametrize(("site", "route"), UNMAPPED, ids=[f"{s}/{r.name}" for s, r in UNMAPPED])
def test_a_route_not_in_the_table_takes_no_write(site, route, world, settings):
    use_site(settings, site)
    client = client_for(getattr(world, site))
    objects = world.objects()
    kwargs = {}
    for kwarg in route.kwargs:
        word = route.name.rsplit(":", 1)[-1].split("-")[0]
        assert kwarg in ("pk", "id") and word in objects, f"{route.name}: can't fill '{kwarg}'; map it in World.objects"
        kwargs[kwarg] = objects[word]
    problems = write_probe(client, route.name, reverse(route.name, kwargs=kwargs))
    assert not problems, "\n".join(problems)


# --- the check itself can fail ---------------------------------------------------------------------


@require_POST
def _unaudited_plan_create(request):
    """Writes straight through the ORM: no service, no audit entry."""
    Plan.objects.create(name=request.POST.get("name", "Sneaky"))
    return HttpResponse(status=201)


urlpatterns = [
    path("", include("portal.urls.tenant")),
    path("sneaky/plans/", _unaudited_plan_create, name="sneaky-plan-create"),
]


def test_an_unmapped_route_that_writes_is_caught(settings, world):
    settings.ROOT_URLCONF = __name__
    (route,) = [r for r in object_routes(__name__, with_kwargs_only=False) if r.name == "sneaky-plan-create"]
    problems = write_probe(client_for(world.tenant), route.name, reverse(route.name))
    assert problems and problems[0].startswith("sneaky-plan-create: POST /sneaky/plans/ answered 201 and wrote")


def test_a_mapped_route_that_writes_no_entry_is_caught(settings, world):
    settings.ROOT_URLCONF = __name__
    case = Case("plan.create", body=lambda w: {"name": "Sneaky"})
    with pytest.raises(AssertionError, match=r"wrote no 'plan\.create' audit entry"):
        exercise("tenant", "sneaky-plan-create", 0, case, world)
    assert Plan.objects.filter(name="Sneaky").exists()

"""The audit log: who did what to which object, on behalf of which subscription, with what outcome.

A service opts in with one line, the decorator `@audited("vm.{action}", target="vm")`:

- it runs the service inside `transaction.atomic()` and writes the `AuditEntry` at the end of that
  block, so the entry commits or rolls back with the change it describes;
- a refusal (ServiceError, ValidationError, PermissionDenied: the change rolled back) is recorded
  as *refused* with its message after the rollback, in its own transaction, so it isn't lost; any
  other exception as *failed* (its type only: an unexpected error's text may hold anything);
- the object is the keyword argument named by `target` (snapshotted before and after) or, without
  one, what the service returns (the first item of a tuple: `vm_create` returns `(vm, job)`);
  `track(obj)` inside the service names it explicitly (e.g. a row it is about to replace);
- only the fields that changed are kept, as `{field: [before, after]}`, secrets redacted.

Who and where come from the request (`RequestContextMiddleware`: the user, read when the entry is
written because DRF authenticates a token after the middleware ran; the client address as
django-axes resolves it; the request id); outside a request (workers, commands) the actor is
"system", or whoever `acting_as(user)` names.

Secrets never appear: a field is redacted when its model lists it in `audit_redact`, or when its
name (or a key of a JSON field, at any depth) looks secret (`is_secret_name`). A model may also narrow what
is compared with `audit_fields`.
"""

from __future__ import annotations

import contextvars
import datetime
import decimal
import functools
import ipaddress
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.http import HttpRequest

from portal.exceptions import ServiceError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# Field names (and JSON keys) whose values are never written to the log: a name containing one of
# SECRET_SUBSTRINGS, or with one of SECRET_WORDS as a word of its own (snake_case or camelCase), so
# admin_password, secret_settings, apiKey and ssh_key are secrets and "passive" or "monkey" aren't.
SECRET_SUBSTRINGS = ("passw", "passphrase", "secret", "token", "credential", "apikey", "privatekey")
SECRET_WORDS = {"pass", "pwd", "key", "keys", "digest", "salt", "otp", "totp", "pin"}
_WORD_BOUNDARY = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    if any(part in lowered for part in SECRET_SUBSTRINGS):
        return True
    return any(word.lower() in SECRET_WORDS for word in _WORD_BOUNDARY.split(name))


REDACTED = "[redacted]"
# What a password change records: that it changed, never a hash.
PASSWORD_CHANGED = {"password": [REDACTED, REDACTED]}
# Fields no one needs in a diff: they change with every write.
NOISE_FIELDS = {"updated_at", "last_used_at", "heartbeat"}
REFUSALS = (ServiceError, ValidationError, PermissionDenied)
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
SYSTEM = "system"


# --- the request context --------------------------------------------------------------------------


@dataclass
class RequestContext:
    """What the middleware knows about the request being served."""

    request: HttpRequest
    request_id: str

    @property
    def user(self) -> Any:
        # Read when an entry is written: DRF sets request._request.user after token authentication.
        user = getattr(self.request, "user", None)
        return user if getattr(user, "is_authenticated", False) else None

    @property
    def ip(self) -> str | None:
        return client_ip(self.request)


_request: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("canopy_audit_request", default=None)
_actor: contextvars.ContextVar[Any] = contextvars.ContextVar("canopy_audit_actor", default=None)
_entry: contextvars.ContextVar[_Draft | None] = contextvars.ContextVar("canopy_audit_entry", default=None)


def sane_request_id(value: str | None) -> str | None:
    """A client's X-Request-ID is kept only if it is short and plain (it is echoed and logged)."""
    if value and REQUEST_ID_PATTERN.match(value):
        return value
    return None


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as django-axes sees it (same proxy settings: AXES_CLIENT_IP_CALLABLE,
    AXES_IPWARE_*), so the audit log and the sign-in lockout agree on who someone is."""
    from axes.helpers import get_client_ip_address

    address = get_client_ip_address(request)
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        return None


@contextmanager
def request_context(request: HttpRequest, request_id: str) -> Iterator[RequestContext]:
    """Serve a request with this context (the middleware's job)."""
    context = RequestContext(request, request_id)
    token = _request.set(context)
    try:
        yield context
    finally:
        _request.reset(token)


def current_request_id() -> str:
    context = _request.get()
    return context.request_id if context else ""


@contextmanager
def acting_as(user: Any) -> Iterator[None]:
    """Outside a request (a job, a command), record `user` as the actor instead of "system"; a
    callable is called only when an entry is written (a job's creator is read only if needed)."""
    token = _actor.set(user)
    try:
        yield
    finally:
        _actor.reset(token)


# --- snapshots and redaction ----------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): (REDACTED if is_secret_name(str(k)) else _plain(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _audited_fields(model: type[models.Model]) -> list[models.Field]:
    declared = getattr(model, "audit_fields", None)
    fields = [
        f
        for f in model._meta.concrete_fields
        if not f.primary_key
        and f.name not in NOISE_FIELDS
        and not getattr(f, "auto_now", False)
        and not getattr(f, "auto_now_add", False)
    ]
    if declared is not None:
        fields = [f for f in fields if f.name in declared]
    return fields


def is_secret(model: type[models.Model], name: str) -> bool:
    return name in getattr(model, "audit_redact", ()) or is_secret_name(name)


def snapshot(obj: models.Model) -> dict[str, Any]:
    """The object's audited fields as plain JSON values, secrets already redacted."""
    model = obj.__class__  # not type(): request.user is a lazy object standing for a User
    values = {}
    for f in _audited_fields(model):
        value = getattr(obj, f.attname)
        if is_secret(model, f.name):
            value = REDACTED if value not in (None, "", {}, []) else value
        values[f.name] = _plain(value)
    return values


def _reload(obj: models.Model) -> models.Model | None:
    if obj.pk is None:
        return None
    return obj.__class__._base_manager.filter(pk=obj.pk).first()


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """Only the fields that changed: `{field: [before, after]}` (None where a side has no value)."""
    return {
        name: [before.get(name), after.get(name)]
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name)
    }


# --- recording -----------------------------------------------------------------------------------


@dataclass
class _Draft:
    """The entry being built while a service runs."""

    action: str
    obj: models.Model | None = None
    before: dict[str, Any] | None = None
    subscription_id: Any = None
    extra: dict[str, list[Any]] = field(default_factory=dict)

    def track(self, obj: models.Model | None) -> None:
        self.obj = obj
        if obj is not None and self.before is None:
            current = _reload(obj)
            self.before = snapshot(current) if current is not None else {}


def track(obj: models.Model | None) -> None:
    """Name the object the running audited service changes, snapshotting it now (call it before the
    change, e.g. with the row an update_or_create is about to replace)."""
    draft = _entry.get()
    if draft is not None:
        draft.track(obj)


def note(*, subscription: Any = None, changes: dict[str, list[Any]] | None = None) -> None:
    """Add to the running audited service's entry: its subscription, or changes no field shows."""
    draft = _entry.get()
    if draft is None:
        return
    if subscription is not None:
        draft.subscription_id = getattr(subscription, "pk", subscription)
    if changes:
        draft.extra.update(changes)


def _subscription_of(obj: models.Model | None) -> Any:
    if obj is None:
        return None
    from portal.models import AuditEntry

    subscription_model = AuditEntry._meta.get_field("subscription").related_model
    if isinstance(obj, cast(type, subscription_model)):
        return obj.pk
    return getattr(obj, "subscription_id", None)


def _actor_now() -> Any:
    context = _request.get()
    if context is not None:
        return context.user
    actor = _actor.get()
    return actor() if callable(actor) else actor


def record(
    action: str,
    *,
    obj: models.Model | None = None,
    object_repr: str = "",
    outcome: str = "succeeded",
    message: str = "",
    changes: dict[str, list[Any]] | None = None,
    subscription: Any = None,
    actor: Any = None,
) -> Any:
    """Write one entry now, in the current transaction (services use `@audited`; this is for
    events that aren't a service call, such as sign-in). Returns the AuditEntry."""
    from portal.models import AuditEntry

    context = _request.get()
    actor = actor if actor is not None else _actor_now()
    if actor is not None:
        label = getattr(actor, "email", "") or str(actor)
    else:
        label = "anonymous" if context is not None else SYSTEM
    subscription_id = getattr(subscription, "pk", subscription) if subscription is not None else _subscription_of(obj)
    return AuditEntry.objects.create(
        action=action,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=label[:254],
        by_staff=bool(getattr(actor, "is_staff", False)),
        subscription_id=subscription_id,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        object_repr=(object_repr or (str(obj) if obj is not None else ""))[:200],
        changes=changes or {},
        outcome=outcome,
        message=message[:2000],
        ip=context.ip if context else None,
        request_id=context.request_id if context else "",
        site=getattr(settings, "CANOPY_SITE", "") if context else SYSTEM,
    )


def _refusal_message(exc: BaseException) -> str:
    if isinstance(exc, ServiceError):
        return exc.message
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in exc.message_dict.items())
        return " ".join(exc.messages)
    return str(exc) or type(exc).__name__


def _write_outcome(draft: _Draft, outcome: str, message: str) -> None:
    """A refused or failed action's entry, after its change rolled back; never hides the error."""
    try:
        with transaction.atomic():
            record(
                draft.action,
                obj=draft.obj,
                outcome=outcome,
                message=message,
                subscription=draft.subscription_id,
                changes=draft.extra,
            )
    except Exception:  # the caller's own error matters more than its audit entry
        log.exception("could not record the audit entry of %s (%s)", draft.action, outcome)


def _first(result: Any) -> models.Model | None:
    if isinstance(result, tuple) and result:
        result = result[0]
    return result if isinstance(result, models.Model) else None


def audited(action: str, *, target: str | None = None) -> Callable[[F], F]:
    """Record each call of a (keyword-only) service in the audit log, in the service's transaction.

    `action` is a dotted verb and may name the service's keyword arguments: `"vm.{action}"`.
    `target` names the keyword argument holding the object the service changes; without it, the
    object is what the service returns (the first item of a tuple) or what it passed to `track`.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            draft = _Draft(action.format(**kwargs) if "{" in action else action)
            if isinstance(kwargs.get("subscription"), models.Model):  # known even if the service refuses
                draft.subscription_id = kwargs["subscription"].pk
            token = _entry.set(draft)
            try:
                with transaction.atomic():
                    if target is not None:
                        draft.track(kwargs.get(target))
                    result = func(*args, **kwargs)
                    obj = draft.obj if draft.obj is not None else _first(result)
                    # A row the service just created is as it returned it; a changed one is read back
                    # (services often write with update(), leaving their instance stale).
                    created = draft.obj is None and draft.before is None
                    current = obj if created else (_reload(obj) if obj is not None else None)
                    after = snapshot(current) if current is not None else {}
                    changes = {**diff(draft.before or {}, after), **draft.extra}
                    record(
                        draft.action,
                        obj=current or obj,
                        changes=changes,
                        subscription=draft.subscription_id,
                    )
                return result
            except REFUSALS as exc:
                _write_outcome(draft, "refused", _refusal_message(exc))
                raise
            except Exception as exc:
                _write_outcome(draft, "failed", f"Unexpected error ({type(exc).__name__}).")
                raise
            finally:
                _entry.reset(token)

        wrapper.audit_action = action  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate


# --- sign-in and sign-out (Django's auth signals, connected in PortalConfig.ready) ----------------


def on_signed_in(sender: Any, request: HttpRequest | None = None, user: Any = None, **kwargs: Any) -> None:
    record("account.sign_in", obj=user, actor=user, changes={})


def on_signed_out(sender: Any, request: HttpRequest | None = None, user: Any = None, **kwargs: Any) -> None:
    record("account.sign_out", obj=user, actor=user)


def on_sign_in_failed(sender: Any, credentials: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Only the name tried is kept (Django has already masked the password in `credentials`)."""
    tried = str((credentials or {}).get("username", ""))
    record("account.sign_in", object_repr=tried, outcome="refused", message="Wrong email or password, or locked out.")

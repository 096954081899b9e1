"""Errors that services raise and both the pages and the API translate for the user.

Field-level validation uses django.core.exceptions.ValidationError (forms and the API map it to
field errors). Everything else a user can cause is a ServiceError with a stable `code`.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A refusal the user can act on. `status` is the HTTP status the API answers with."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class NotAllowed(ServiceError):
    """The object's state or the subscription's state doesn't allow the action now."""

    code = "not_allowed"
    status = 409


class Forbidden(ServiceError):
    """The user may see the object but not do this to it (e.g. a co-administrator cancelling a
    subscription only its owner may cancel)."""

    code = "forbidden"
    status = 403


class Conflict(ServiceError):
    code = "conflict"
    status = 409


class QuotaExceeded(ServiceError):
    """An action would take a subscription past one of its quotas."""

    code = "quota_exceeded"
    status = 409

    def __init__(self, *, label: str, limit: int, used: int, requested: int, unit: str = "") -> None:
        self.label, self.limit, self.used, self.requested = label, limit, used, requested
        unit = f" {unit}" if unit else ""
        super().__init__(
            f"Quota exceeded for {label}: the limit is {limit}{unit}, {used}{unit} in use, "
            f"this needs {requested}{unit} more."
        )

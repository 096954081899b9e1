"""Input rules for VMs, shared by forms, serializers and services."""

import re

from django.core.exceptions import ValidationError

VM_NAME_RE = re.compile(r"^[A-Za-z](?:[A-Za-z0-9-]{0,13}[A-Za-z0-9])?$")


def validate_vm_name(name: str) -> None:
    """A name that is also a valid computer name: 1-15 letters, digits and hyphens, starting with a
    letter, not ending with a hyphen (NetBIOS limit, so Windows guests can use it too)."""
    if not VM_NAME_RE.match(name or ""):
        raise ValidationError(
            "Use 1 to 15 letters, digits and hyphens, starting with a letter and not ending with a hyphen.",
            code="invalid_vm_name",
        )


def validate_admin_password(password: str) -> None:
    """Like Azure: 8 to 123 characters, with three of: lower case, upper case, digit, symbol."""
    if not 8 <= len(password or "") <= 123:
        raise ValidationError("The password must be 8 to 123 characters long.", code="password_length")
    classes = sum(bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]"))
    if classes < 3:
        raise ValidationError(
            "The password needs three of: a lower-case letter, an upper-case letter, a digit, a symbol.",
            code="password_complexity",
        )


def validate_admin_username(username: str) -> None:
    if not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", username or ""):
        raise ValidationError(
            "Use 1 to 32 lower-case letters, digits, '-' or '_', starting with a letter.",
            code="invalid_username",
        )
    if username in {"root", "admin", "administrator", "guest"}:
        raise ValidationError(f"'{username}' is reserved; choose another user name.", code="reserved_username")

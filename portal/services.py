"""Writes of the portal's own rows: the provider settings staff change in the admin portal."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from portal.models import PortalSettings, SignupPolicy


def portal_settings_update(*, by: Any, signup_policy: str) -> PortalSettings:
    """Change the provider settings; takes effect on the next request of every process (the row is
    read per request, nothing is cached). Raises ValidationError for an unknown value."""
    if signup_policy not in SignupPolicy.values:
        raise ValidationError({"signup_policy": f"Unknown sign-up policy '{signup_policy}'."})
    with transaction.atomic():
        PortalSettings.load()
        row = PortalSettings.objects.select_for_update().get(pk=PortalSettings.SINGLETON_PK)
        row.signup_policy = signup_policy
        row.updated_by = by if getattr(by, "pk", None) else None
        row.save()
    return row

"""Input bounds that follow the database column the input is written to.

Django derives a Min/MaxValueValidator from an integer column's type on the database in use
(a PositiveIntegerField holds 0..2147483647 on PostgreSQL), but only model validation runs them;
forms, serializers and services that write with `create`/`update` never do. These helpers put those
bounds on the input fields (a field error, and the HTML `max`) and let services check the values
themselves, so a number the column can't hold never reaches the database as an error 500.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


def _column(model: type[models.Model], name: str) -> models.Field:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field), f"{model.__name__}.{name} is no column"
    return field


def column_bounds(model: type[models.Model], name: str, **narrower: int) -> dict[str, int]:
    """`min_value`/`max_value` for a form or serializer field feeding `model.name`; `narrower` may
    tighten them (e.g. `min_value=1`), never widen them past the column."""
    bounds: dict[str, int] = {}
    for validator in _column(model, name).validators:
        if isinstance(validator, MinValueValidator):
            bounds["min_value"] = max(bounds.get("min_value", validator.limit_value), validator.limit_value)
        elif isinstance(validator, MaxValueValidator):
            bounds["max_value"] = min(bounds.get("max_value", validator.limit_value), validator.limit_value)
    for key, value in narrower.items():
        column = bounds.get(key)
        tighter = max if key == "min_value" else min
        bounds[key] = value if column is None else tighter(column, value)
    return bounds


def validate_columns(model: type[models.Model], **values: Any) -> None:
    """Raise ValidationError({field: messages}) for values `model`'s columns can't hold (None is
    left to the caller: it means "unlimited" or "unset" for nullable columns)."""
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        if value is None:
            continue
        try:
            _column(model, name).run_validators(value)
        except ValidationError as exc:
            errors[name] = exc.messages
    if errors:
        raise ValidationError(errors)

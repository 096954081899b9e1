"""API conventions shared by both sites: one error body, one pagination, 202 + job URL for long work.

Every 4xx answers ``{"code": ..., "message": ..., "fields": {field: [messages]}}``.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.http import Http404
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_serializer, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal.access import Capability, has_capability, is_staff, refusal, view_capability
from portal.auth import account_allowed_on_site
from portal.exceptions import ServiceError


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, skipped when no query parameter starts with one of the view's filter
    names (a range filter's are `<name>_min`...): building and validating a FilterSet costs more than
    a list page's query, and with no parameter it filters nothing."""

    def filter_queryset(self, request: Any, queryset: Any, view: Any) -> Any:
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None:
            return queryset
        names = tuple(filterset_class.base_filters)
        if not any(param.startswith(names) for param in request.query_params):
            return queryset
        return super().filter_queryset(request, queryset, view)


def _role_allows(permission: BasePermission, request: Any, view: Any) -> bool:
    """portal.access's role check for the capability the view declares for this request; an action
    that declares nothing is for administrators only. A method the viewset doesn't route (no action)
    passes, so DRF answers it 405."""
    if hasattr(view, "action") and view.action is None:
        return True
    capability = view_capability(view) or Capability.ADMINISTER
    if has_capability(request.user, capability):
        return True
    permission.message = refusal(request.user, capability)  # type: ignore[attr-defined]
    return False


class IsStaff(BasePermission):
    """Staff API: only staff accounts (SiteBackend already refuses others; this is defense in depth),
    and only those whose role grants what the view declares (`capabilities`/`capability`)."""

    message = "This API is for staff accounts."

    def has_permission(self, request: Any, view: Any) -> bool:
        return is_staff(request.user) and _role_allows(self, request, view)


class IsTenant(BasePermission):
    """Tenant API: only tenant accounts, never staff (whose scope is everything)."""

    message = "This API is for tenant accounts."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and not user.is_staff)


class IsSiteAccount(BasePermission):
    """Routes both sites have (jobs, schema): the account must belong to the site serving the request."""

    message = "This account can't use this site's API."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated and account_allowed_on_site(user)):
            return False
        return not is_staff(user) or _role_allows(self, request, view)


def _fields(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            if isinstance(value, list):
                out[key] = [str(v) for v in value]
            elif isinstance(value, dict):
                for sub, msgs in _fields(value).items():
                    out[f"{key}.{sub}"] = msgs
            else:
                out[key] = [str(value)]
        return out
    return {}


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "fields": fields or {}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Translate service errors and Django's ValidationError; give every 4xx the same body."""
    if isinstance(exc, ServiceError):
        fields = {exc.field: [exc.message]} if exc.field else {}
        return Response(error_body(exc.code, exc.message, fields), status=exc.status)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            fields = {k: [str(m) for e in v for m in e.messages] for k, v in exc.error_dict.items()}
        else:
            fields = {"non_field_errors": exc.messages}
        return Response(
            error_body("invalid", "The request has invalid fields.", fields),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, ObjectDoesNotExist):
        exc = Http404()
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = (
            _fields(exc.detail) if isinstance(exc.detail, dict) else {"non_field_errors": [str(d) for d in exc.detail]}
        )
        response.data = error_body("invalid", "The request has invalid fields.", fields)
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        message = str(detail.get("detail", detail)) if isinstance(detail, dict) else str(detail)
        code = exc.get_codes()
        response.data = error_body(code if isinstance(code, str) else exc.default_code, message)
    else:  # Http404 mapped by DRF
        response.data = error_body("not_found", "Not found.")
    return response


def job_url(request: Any, job: Any) -> str:
    """The job's API URL on the site serving this request (staff-api or tenant-api namespace)."""
    namespace = request.resolver_match.namespace if request.resolver_match else ""
    return reverse(f"{namespace}:job-detail" if namespace else "job-detail", kwargs={"pk": job.pk})


def accepted_job(request: Any, job: Any, body: dict[str, Any] | None = None) -> Response:
    """`accepted()` with the job URL of the current site."""
    return accepted(job, request, job_url=job_url(request, job), body=body)


class PrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A related object's id taken as written. DRF hands the value to the ORM, whose int() turns
    3.7 or `true` into the id of another object; here an integer id is a JSON integer or a string of
    digits, a UUID id a string, and anything else is a field error (400)."""

    def to_internal_value(self, data: Any) -> Any:
        integer_pk = isinstance(self.get_queryset().model._meta.pk, models.IntegerField)
        if integer_pk:
            well_formed = (isinstance(data, int) and not isinstance(data, bool)) or (
                isinstance(data, str) and re.fullmatch(r"[0-9]+", data) is not None
            )
        else:
            well_formed = isinstance(data, str)
        if not well_formed:
            self.fail("incorrect_type", data_type=type(data).__name__)
        try:
            return super().to_internal_value(data)
        except DjangoValidationError:  # e.g. a string that is no UUID
            self.fail("does_not_exist", pk_value=data)


# --- schema pieces ----------------------------------------------------------------------------------


@extend_schema_serializer(many=False)
class ErrorSerializer(serializers.Serializer):
    """The body of every 4xx answer: `fields` maps an input field to its messages."""

    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))

    class Meta:
        ref_name = "Error"


class JobRefSerializer(serializers.Serializer):
    """The job a 202 answer started: poll `url` until `state` is succeeded or failed."""

    id = serializers.UUIDField()
    url = serializers.URLField()
    state = serializers.CharField()


def accepted_serializer(name: str, **body: serializers.Field) -> serializers.Serializer:
    """Schema of a 202 body: the job, plus what the action returns (e.g. the VM)."""
    return inline_serializer(name=name, fields={"job": JobRefSerializer(), **body})


ERRORS = {400: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer, 409: ErrorSerializer}


def accepted(job: Any, request: Any, *, job_url: str, body: dict[str, Any] | None = None) -> Response:
    """202 Accepted for long work: the job's URL in Location and in the body."""
    url = request.build_absolute_uri(job_url)
    data = {"job": {"id": str(job.pk), "url": url, "state": job.state}, **(body or {})}
    return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": url})

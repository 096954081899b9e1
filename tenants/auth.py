"""API authentication by personal API token (`Authorization: Bearer cnp_…`), for scripts and the CLI.

A token stands for its account under the same site rule as a sign-in (portal.auth): a tenant's token
is refused by the admin API and a staff token by the tenant API. A read-scoped token may only read.
Failed token authentications are counted per client address in Django's cache; past
CANOPY_TOKEN_FAILURE_LIMIT within CANOPY_TOKEN_FAILURE_WINDOW_SECONDS, that address gets 429.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import authentication, exceptions
from rest_framework.permissions import SAFE_METHODS

from portal.auth import account_allowed_on_site
from tenants.models import TokenScope
from tenants.selectors import token_find
from tenants.services import token_mark_used

AUTH_HEADER = 'Bearer realm="api"'


class TokenRejected(exceptions.APIException):
    """401 with `WWW-Authenticate: Bearer`. Not an AuthenticationFailed: DRF would turn that into 403,
    since session authentication (which has no such header) comes first for the portals' own calls."""

    status_code = 401
    default_code = "invalid_token"
    default_detail = "Invalid API token."
    auth_header = AUTH_HEADER


def _failure_key(request: Any) -> str:
    return f"canopy:token-failures:{request.META.get('REMOTE_ADDR', '')}"


def _record_failure(request: Any) -> None:
    key = _failure_key(request)
    cache.add(key, 0, timeout=settings.CANOPY_TOKEN_FAILURE_WINDOW_SECONDS)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr: start a new window
        cache.set(key, 1, timeout=settings.CANOPY_TOKEN_FAILURE_WINDOW_SECONDS)


class TokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>`; requests without it fall through to session authentication."""

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if (cache.get(_failure_key(request)) or 0) >= settings.CANOPY_TOKEN_FAILURE_LIMIT:
            raise exceptions.Throttled(
                wait=settings.CANOPY_TOKEN_FAILURE_WINDOW_SECONDS,
                detail="Too many failed API token authentications from your address: try again later.",
            )
        try:
            token = self._valid_token(parts)
        except TokenRejected:
            _record_failure(request)
            raise
        if token.scope == TokenScope.READ and request.method not in SAFE_METHODS:
            raise exceptions.PermissionDenied("This API token is read-only.", code="insufficient_scope")
        token_mark_used(token=token)
        return token.user, token

    def _valid_token(self, parts: list[bytes]) -> Any:
        if len(parts) != 2:
            raise TokenRejected("Malformed Authorization header: expected 'Bearer <token>'.")
        try:
            secret = parts[1].decode()
        except UnicodeError:
            raise TokenRejected() from None
        token = token_find(secret=secret)
        if token is None:
            raise TokenRejected()
        if token.revoked_at is not None:
            raise TokenRejected("This API token was revoked.")
        if token.is_expired(timezone.now()):
            raise TokenRejected("This API token has expired.")
        if not token.user.is_active or not account_allowed_on_site(token.user):
            raise TokenRejected("This API token can't be used on this site.")
        return token

    def authenticate_header(self, request: Any) -> str:
        return AUTH_HEADER


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    """The OpenAPI schema describes it as a bearer token."""

    target_class = "tenants.auth.TokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")  # noqa: S106

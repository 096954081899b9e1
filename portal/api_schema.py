"""The OpenAPI schema class of both sites (DEFAULT_SCHEMA_CLASS). Kept out of portal.api: drf-spectacular's
generator imports DRF's generic views, whose settings import portal.api (FilterBackend) in turn."""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi

from portal.api import ErrorSerializer


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, plus the error answers (with the error body) an operation can give
    that its view didn't declare: 403 for every one (each needs a site account), 404 where the path
    names an object or a list pages (a stale cursor or page), 400 where there is input (a body or a
    list's filters)."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        is_list = self.method == "GET" and self._is_list_view()
        codes = ["403"]
        if "{" in self.path or (is_list and self._get_paginator() is not None):
            codes.append("404")
        if self.method in ("POST", "PUT", "PATCH") or (is_list and getattr(self.view, "filterset_class", None)):
            codes.append("400")
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code, direction=direction)
        return dict(sorted(responses.items()))

"""Keyset (cursor) pages for the large lists (VMs, jobs), in the API and in the pages alike.

Each page is one `WHERE created_at < <the cursor's> ORDER BY created_at DESC, id DESC LIMIT 51`,
read off a (scope, newest first) index, so page 1 and page 1,000 cost the same, and nothing counts
the rows (a count reads the whole scope). The price: no "page 7 of 40", only newer and older.
The pages reuse DRF's CursorPagination (opaque cursors, validated on the way in) rather than a
second implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.http import Http404, HttpRequest
from rest_framework import pagination
from rest_framework.exceptions import NotFound
from rest_framework.request import Request


class CursorPagination(pagination.CursorPagination):
    """`{next, previous, results}`, newest first; `next`/`previous` are URLs with an opaque `cursor`.
    The order has a tie-break on id, so rows created in the same microsecond are neither skipped nor
    repeated."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


@dataclass(frozen=True)
class CursorPage:
    """One page of an HTML list: its rows and the links to the newer and older pages (or None)."""

    object_list: list[Any]
    newer_url: str | None
    older_url: str | None


def _relative(url: str | None) -> str | None:
    """Links in pages stay on whatever host served them."""
    if url is None:
        return None
    parts = urlsplit(url)
    return urlunsplit(("", "", parts.path, parts.query, ""))


def cursor_page(request: HttpRequest, queryset: Any) -> CursorPage:
    """The page of `queryset` that the request's `cursor` names (the newest without one).
    A cursor that isn't one of ours is a 404, as an unknown page number would be."""
    paginator = CursorPagination()
    try:
        rows = paginator.paginate_queryset(queryset, Request(request))
    except NotFound as exc:
        raise Http404("No such page.") from exc
    return CursorPage(list(rows or []), _relative(paginator.get_previous_link()), _relative(paginator.get_next_link()))

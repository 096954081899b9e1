"""The navigation registry: each service (VMs now; web sites, networks, databases later) registers
its rail entries, its "+ New" choices and its overview tiles from its AppConfig.ready, so it appears
in a portal by registering, and the portal imports no service (dependencies point one way).

A rail count is a queryset, counted by the portal with `bounded_count` (one bounded query, only
when a template reads it), so no service can make the rail cost a full count or a query per row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, TypeVar

from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse

Site = Literal["staff", "tenant"]

# The rail shows "999+" beyond this: counting stops there, so a count costs the same at 2,000 rows
# as at 2 million (a full count reads every row of the scope).
RAIL_COUNT_LIMIT = 999


@dataclass(frozen=True)
class BoundedCount:
    value: int
    more: bool

    def __str__(self) -> str:
        return f"{self.value}+" if self.more else str(self.value)


def bounded_count(queryset: QuerySet[Any], limit: int | None = None) -> BoundedCount:
    """Count at most `limit` + 1 rows (`SELECT count(*) FROM (... LIMIT n)`)."""
    limit = RAIL_COUNT_LIMIT if limit is None else limit
    n = queryset.order_by()[: limit + 1].count()
    return BoundedCount(min(n, limit), n > limit)


def _everyone(user: Any) -> bool:
    return True


@dataclass(frozen=True)
class RailEntry:
    """A link in one site's left rail. `count(user)` returns the queryset whose (bounded) size is shown
    beside it; `active` lists url-name fragments that highlight it (default: its own url name)."""

    site: Site
    label: str
    url_name: str
    order: int = 100
    count: Callable[[Any], QuerySet[Any]] | None = None
    active: tuple[str, ...] = ()
    allowed: Callable[[Any], bool] = _everyone


@dataclass(frozen=True)
class NewChoice:
    """One choice of a site's "+ New" button: what can be created, and the page that creates it."""

    site: Site
    label: str
    url_name: str
    description: str = ""
    order: int = 100
    allowed: Callable[[Any], bool] = _everyone


@dataclass(frozen=True)
class OverviewTile:
    """A section of a site's overview page: `template` is rendered with `data`, the dict that
    `context(request)` returns; None leaves the tile out."""

    site: Site
    title: str
    template: str
    context: Callable[[HttpRequest], dict[str, Any] | None]
    order: int = 100
    allowed: Callable[[Any], bool] = _everyone


T = TypeVar("T", RailEntry, NewChoice, OverviewTile)

_rail: list[RailEntry] = []
_new: list[NewChoice] = []
_tiles: list[OverviewTile] = []


def register(*items: RailEntry | NewChoice | OverviewTile) -> None:
    """Add rail entries, "+ New" choices and overview tiles; call it from AppConfig.ready."""
    for item in items:
        if isinstance(item, RailEntry):
            _rail.append(item)
        elif isinstance(item, NewChoice):
            _new.append(item)
        elif isinstance(item, OverviewTile):
            _tiles.append(item)
        else:
            raise TypeError(f"Cannot register {item!r} in the navigation.")


def _for(items: list[T], site: str, user: Any) -> list[T]:
    return sorted((i for i in items if i.site == site and i.allowed(user)), key=lambda i: i.order)


class RailLink:
    """A rail entry as one user sees it on one page; its count runs only if the template reads it."""

    def __init__(self, entry: RailEntry, user: Any, url_name: str) -> None:
        self.entry, self.user = entry, user
        self.label = entry.label
        own = entry.url_name.rsplit(":", 1)[-1]
        self.active = bool(url_name) and (
            url_name == own if not entry.active else any(part in url_name for part in entry.active)
        )
        self.counted = entry.count is not None

    @cached_property
    def url(self) -> str:
        return reverse(self.entry.url_name)

    @cached_property
    def count(self) -> BoundedCount | None:
        return bounded_count(self.entry.count(self.user)) if self.entry.count is not None else None


@dataclass(frozen=True)
class NewLink:
    label: str
    url: str
    description: str


class Navigation:
    """What a page's rail and "+ New" show for its site and user, built only when a template asks."""

    def __init__(self, site: str, user: Any, url_name: str = "") -> None:
        self.site, self.user, self.url_name = site, user, url_name

    @cached_property
    def rail(self) -> list[RailLink]:
        return [RailLink(entry, self.user, self.url_name) for entry in _for(_rail, self.site, self.user)]

    @cached_property
    def new(self) -> list[NewLink]:
        return [NewLink(c.label, reverse(c.url_name), c.description) for c in _for(_new, self.site, self.user)]


@dataclass(frozen=True)
class Tile:
    title: str
    template: str
    data: dict[str, Any]


def overview_tiles(request: HttpRequest, site: str) -> list[Tile]:
    """The overview page's tiles for this site and user, in order, each with its data."""
    tiles = []
    for tile in _for(_tiles, site, request.user):
        data = tile.context(request)
        if data is not None:
            tiles.append(Tile(tile.title, tile.template, data))
    return tiles

"""Pluggable backends (fabric drivers now; web site cloud and database server drivers later), found by
name through an entry point group or by dotted path, and checked to subclass the expected base.

One loader for every kind of backend, so each app declares its group and base class instead of
copying the mechanism. Plain Python (no Django), so a driver package can use it on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar, cast

B = TypeVar("B")


class BackendLoader(Generic[B]):
    """Resolves a backend name (an entry point of `group`, or one of `builtins`) or a dotted path
    ("pkg.module.Class") to a subclass of `base`; anything else is an ImportError that says why.

    `builtins` (name -> dotted path) make the embedded defaults work even when the package is not
    installed with its entry points; an installed entry point of the same name wins.
    """

    # `base` is typed as a plain type: the base of a backend is usually abstract, which mypy won't
    # accept as type[B]; annotate the loader instead (`BackendLoader[FabricDriver]`).
    def __init__(self, *, group: str, base: type, builtins: Mapping[str, str] | None = None, kind: str = "") -> None:
        self.group, self.base = group, base
        self.builtins = builtins if builtins is not None else {}
        self.kind = kind or base.__name__
        self._resolved: dict[str, type[B]] = {}

    def available(self) -> dict[str, str]:
        """The names that can be chosen -> their dotted paths."""
        found = dict(self.builtins)
        for ep in entry_points(group=self.group):
            found[ep.name] = ep.value.replace(":", ".")
        return found

    def resolve(self, name: str) -> type[B]:
        """The class a name or dotted path stands for (cached). Raises ImportError."""
        cls = self._resolved.get(name)
        if cls is None:
            cls = self._resolved[name] = self._import(name)
        return cls

    def load(self, name: str, *args: Any, **kwargs: Any) -> B:
        """An instance of the backend, built with the given arguments (e.g. its settings)."""
        factory: Callable[..., B] = self.resolve(name)
        return factory(*args, **kwargs)

    def _import(self, name: str) -> type[B]:
        available = self.available()
        choices = ", ".join(sorted(available)) or "none"
        path = available.get(name, name)
        module_name, _, attr = path.rpartition(".")
        if not module_name:
            raise ImportError(f"No {self.kind} named '{name}'. Available: {choices}.")
        try:
            obj = getattr(import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ImportError(f"Cannot import {self.kind} '{path}' ({exc}). Available: {choices}.") from exc
        if not (isinstance(obj, type) and issubclass(obj, self.base)):
            base = f"{self.base.__module__}.{self.base.__qualname__}"
            raise ImportError(f"'{path}' is not a {self.kind}: it must be a subclass of {base}.")
        return cast("type[B]", obj)

"""One `build()` for every pluggable kind: a dict lookup whose error lists the valid names."""

from __future__ import annotations

from typing import Any, Callable

from masklab.errors import UserError

_REGISTRIES: dict[str, dict[str, Callable[..., Any]]] = {}


def register(kind: str, name: str):
    """Decorator: make `fn` buildable as `build(kind, name, ...)`."""

    def wrap(fn):
        _REGISTRIES.setdefault(kind, {})[name] = fn
        return fn

    return wrap


def names(kind: str) -> list[str]:
    return sorted(_REGISTRIES.get(kind, {}))


def lookup(kind: str, name: str) -> Callable[..., Any]:
    """The registered class or function itself (e.g. to read its settings' defaults)."""
    table = _REGISTRIES.get(kind, {})
    if name not in table:
        raise UserError(f"unknown {kind} {name!r}; choose one of: {', '.join(names(kind))}")
    return table[name]


def build(kind: str, name: str, *args, **kwargs):
    return lookup(kind, name)(*args, **kwargs)

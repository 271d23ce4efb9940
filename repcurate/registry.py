"""One registry style for every extension point (checks, selection strategies, tasks, ...).

Each registry is a module-level ``dict`` name → member in its package plus a ``register`` function made
here (cf. cleanlab's ``issue_manager_factory``: ``REGISTRY`` and ``register()``). Members keep their
registration order, which is the order they run or are tried in. Adding a member is one module plus one
``register(...)`` call; the package's ``test_contract.py`` then checks it like every other member.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def registrar(members: dict[str, Any], kind: str, *, name_of: Callable[[Any], str]) -> Callable[..., Any]:
    """A ``register(member, *, name=None, replace=False)`` function for ``members`` (usable as a decorator).

    ``name_of`` reads a member's own name (e.g. a check's ``id``); ``name`` overrides it. Registering a
    taken name raises ``ValueError`` unless ``replace``, so a plugin cannot shadow a member by accident."""

    def register(member: T, *, name: str | None = None, replace: bool = False) -> T:
        key = name if name is not None else name_of(member)
        if not isinstance(key, str) or not key:
            raise ValueError(f"a {kind} needs a non-empty string name, got {key!r}")
        if key in members and not replace and members[key] is not member:
            raise ValueError(f"{kind} {key!r} is already registered; pass replace=True to replace it")
        members[key] = member
        return member

    register.__doc__ = f"Add a {kind} to the registry (returns it, so it also works as a class decorator)."
    return register


def lookup(members: dict[str, T], name: str, kind: str) -> T:
    """The member registered as ``name``; ``ValueError`` naming the closest registered name otherwise."""
    try:
        return members[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(members), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown {kind} {name!r}{hint}; use one of {', '.join(members)}") from None

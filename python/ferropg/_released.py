"""Refusing use of objects whose pooled connection went back to the pool."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from . import exceptions

__all__ = ("guard_released",)


def release_counter(connection: Any) -> int:
    """The connection's pool-release count, to compare with later (0 outside a pool)."""
    return getattr(connection, "_pool_release_ctr", 0)


def guard_released(kind: str) -> Callable[[Callable], Callable]:
    """Wraps a method of an object holding ``_connection`` and ``_release_ctr``: once the
    connection was released to its pool, the call raises at once, before any coroutine
    is made."""

    def wrap(method: Callable) -> Callable:
        @functools.wraps(method)
        def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
            if release_counter(self._connection) != self._release_ctr:
                raise exceptions.InterfaceError(
                    f"cannot call {kind}.{method.__name__}(): "
                    "the underlying connection has been released back to the pool"
                )
            return method(self, *args, **kwargs)

        return guarded

    return wrap

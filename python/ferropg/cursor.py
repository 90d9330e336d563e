"""Cursors: a query's rows read a piece at a time from a server-side portal.

Portals live only inside a transaction block, as in asyncpg.
"""

from __future__ import annotations

from typing import Any

from . import exceptions, prepared_stmt
from ._released import guard_released, release_counter

__all__ = ("Cursor", "CursorFactory", "CursorIterator")


class CursorOutsideTransactionError(
    exceptions.NoActiveSQLTransactionError, exceptions.InterfaceError
):
    """A cursor was used outside a transaction block.

    asyncpg documents an InterfaceError and raises NoActiveSQLTransactionError; this
    is both, so either ``except`` clause works.
    """


class CursorFactory:
    """What :meth:`Connection.cursor` returns: ``async for`` over it, or ``await`` it."""

    __slots__ = (
        "_connection",
        "_query",
        "_state",
        "_args",
        "_prefetch",
        "_timeout",
        "_record_class",
    )

    def __init__(self, connection, query, state, args, prefetch, timeout, record_class):
        if prefetch is not None and prefetch <= 0:
            raise exceptions.InterfaceError("prefetch argument must be greater than zero")
        self._connection = connection
        self._query = query
        self._state = state
        self._args = args
        self._prefetch = prefetch
        self._timeout = timeout
        self._record_class = record_class

    def __aiter__(self) -> CursorIterator:
        prefetch = 50 if self._prefetch is None else self._prefetch
        return CursorIterator(
            self._connection,
            self._query,
            self._state,
            self._args,
            self._record_class,
            prefetch,
            self._timeout,
        )

    def __await__(self):
        if self._prefetch is not None:
            raise exceptions.InterfaceError(
                "prefetch argument can only be specified for iterable cursor"
            )
        cur = Cursor(self._connection, self._query, self._state, self._args, self._record_class)
        return cur._init(self._timeout).__await__()


class _BaseCursor:
    __slots__ = (
        "_connection",
        "_query",
        "_state",
        "_args",
        "_record_class",
        "_portal",
        "_exhausted",
        "_release_ctr",
    )

    def __init__(self, connection, query, state, args, record_class):
        self._connection = connection
        self._query = query
        self._state = None
        self._args = args
        self._record_class = record_class
        self._portal: str | None = None
        self._exhausted = False
        self._release_ctr = release_counter(connection)
        if state is not None:
            self._hold(state)

    def _hold(self, state) -> None:
        # Like a PreparedStatement, the cursor keeps its statement from being closed,
        # and lets go of it when collected.
        state.attach()
        self._state = state

    def __del__(self) -> None:
        prepared_stmt.release_state(self._connection, getattr(self, "_state", None))

    def _check_ready(self) -> None:
        if self._state is None:
            raise exceptions.InterfaceError("cursor: not initialized")
        if self._portal is None:
            raise exceptions.InterfaceError("cursor: no associated portal")
        self._check_in_transaction()

    def _check_in_transaction(self) -> None:
        con = self._connection
        con._check_open()
        if not con.is_in_transaction():
            raise CursorOutsideTransactionError("cursor cannot be created outside of a transaction")

    async def _bind(self, timeout: float | None) -> None:
        con = self._connection
        if self._state is not None and self._state.closed:
            raise exceptions.InterfaceError("cannot use a cursor: the prepared statement is closed")
        self._check_in_transaction()
        await con._ready_for_operation()
        if self._state is None:
            self._state = await con._get_statement(
                self._query,
                con._timeout(timeout),
                named=True,
                record_class=self._record_class,
            )
        portal = con._get_unique_id("portal")
        await con._wait(
            con._protocol.bind_portal(self._state, self._args, portal), con._timeout(timeout)
        )
        self._portal = portal

    async def _exec(self, n: int, timeout: float | None) -> list:
        con = self._connection
        self._check_ready()
        if self._exhausted:
            return []
        await con._ready_for_operation()
        fut = con._protocol.execute_portal(self._state, self._portal, n)
        rows, suspended, _status = await con._wait(fut, con._timeout(timeout))
        if not suspended:
            # A finished portal still holds its locks until closed.
            self._exhausted = True
            await con._wait(con._protocol.close_portal(self._portal), con._timeout(timeout))
        return rows

    def __repr__(self) -> str:
        attrs = [f'"{self._query[:30]}"']
        if self._exhausted:
            attrs.append("exhausted")
        return f"<ferropg.{type(self).__name__} {' '.join(attrs)} at 0x{id(self):x}>"


class CursorIterator(_BaseCursor):
    """``async for row in con.cursor(...)``: rows fetched ``prefetch`` at a time."""

    __slots__ = ("_prefetch", "_timeout", "_buffer")

    def __init__(self, connection, query, state, args, record_class, prefetch, timeout):
        super().__init__(connection, query, state, args, record_class)
        self._prefetch = prefetch
        self._timeout = timeout
        self._buffer: list = []

    def __aiter__(self) -> CursorIterator:
        return self

    async def __anext__(self) -> Any:
        if self._portal is None:
            await self._bind(self._timeout)
        if not self._buffer and not self._exhausted:
            self._buffer = await self._exec(self._prefetch, self._timeout)
            self._buffer.reverse()
        if self._buffer:
            return self._buffer.pop()
        raise StopAsyncIteration


class Cursor(_BaseCursor):
    """An open cursor: :meth:`fetch`, :meth:`fetchrow` and :meth:`forward`."""

    __slots__ = ()

    async def _init(self, timeout: float | None) -> Cursor:
        await self._bind(timeout)
        return self

    @guard_released("Cursor")
    async def fetch(self, n: int, *, timeout: float | None = None) -> list:
        """The next ``n`` rows (fewer at the end)."""
        self._check_ready()
        if n <= 0:
            raise exceptions.InterfaceError("n must be greater than zero")
        return await self._exec(n, timeout)

    @guard_released("Cursor")
    async def fetchrow(self, *, timeout: float | None = None) -> Any:
        """The next row, or None at the end."""
        self._check_ready()
        rows = await self._exec(1, timeout)
        return rows[0] if rows else None

    @guard_released("Cursor")
    async def forward(self, n: int, *, timeout: float | None = None) -> int:
        """Skips ``n`` rows; returns how many were skipped."""
        self._check_ready()
        if n <= 0:
            raise exceptions.InterfaceError("n must be greater than zero")
        if self._exhausted:
            # The portal was closed when its last row was read.
            return 0
        status = await self._connection.execute(
            f'MOVE FORWARD {n:d} "{self._portal}"', timeout=timeout
        )
        moved = int(status.split()[-1])
        if moved < n:
            self._exhausted = True
        return moved

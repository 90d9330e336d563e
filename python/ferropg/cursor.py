"""Cursors: a query's rows read a piece at a time from a server-side portal.

Portals live only inside a transaction block, as in asyncpg.
"""

from __future__ import annotations

from typing import Any

from . import exceptions, prepared_stmt
from ._released import guard_released, release_counter

__all__ = ("Cursor", "CursorFactory", "CursorIterator")

#: Rows an ``async for`` cursor asks the server for at a time, unless told otherwise.
_DEFAULT_PREFETCH = 50


class CursorOutsideTransactionError(
    exceptions.NoActiveSQLTransactionError, exceptions.InterfaceError
):
    """A cursor was used outside a transaction block.

    asyncpg documents an InterfaceError and raises NoActiveSQLTransactionError; this
    is both, so either ``except`` clause works.
    """


class CursorFactory:
    """What :meth:`Connection.cursor` returns: ``async for`` over it, or ``await`` it."""

    __slots__ = ("_connection", "_cursor_args", "_prefetch", "_timeout")

    def __init__(self, connection, query, state, args, prefetch, timeout, record_class):
        if prefetch is not None and prefetch <= 0:
            raise exceptions.InterfaceError("prefetch argument must be greater than zero")
        self._connection = connection
        # Both kinds of cursor start from the same five things.
        self._cursor_args = (connection, query, state, args, record_class)
        self._prefetch = prefetch
        self._timeout = timeout

    def __aiter__(self) -> CursorIterator:
        batch = _DEFAULT_PREFETCH if self._prefetch is None else self._prefetch
        return CursorIterator(*self._cursor_args, batch, self._timeout)

    def __await__(self):
        if self._prefetch is not None:
            raise exceptions.InterfaceError(
                "prefetch argument can only be specified for iterable cursor"
            )
        return Cursor(*self._cursor_args)._init(self._timeout).__await__()


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

    async def _bind_exec(self, n: int, timeout: float | None) -> list:
        """Opens the portal and reads its first ``n`` rows (an iterator's first batch)."""
        await self._bind(timeout)
        return await self._read(n, timeout)

    async def _read(self, n: int, timeout: float | None) -> list:
        """Reads the portal's next ``n`` rows, closing it after its last."""
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

    # Every round trip that reads rows goes through _bind_exec (first batch of an
    # iterator) or _exec (every other): asyncpg's names, which tracers wrap on the class
    # (Sentry's integration patches BaseCursor._bind_exec and BaseCursor._exec).
    # _bind_exec reads through _read so that a wrapped _exec does not report it twice.
    _exec = _read

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
            self._buffer = await self._bind_exec(self._prefetch, self._timeout)
            self._buffer.reverse()
        elif not self._buffer and not self._exhausted:
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


#: asyncpg's name for the base class of both cursors (``asyncpg.cursor.BaseCursor``),
#: which Sentry's integration imports and patches.
BaseCursor = _BaseCursor

"""``PreparedStatement``: a statement prepared once and run many times."""

from __future__ import annotations

import json
from typing import Any

from . import cursor, exceptions
from ._builtin_types import BUILTIN_TYPES
from ._released import guard_released, release_counter
from .types import Attribute, Type, builtin_type

__all__ = ("PreparedStatement",)


def release_state(connection, state) -> None:
    """Lets go of a statement state held by a PreparedStatement or a cursor: the last
    holder gone, the connection closes it unless its cache keeps it."""
    if state is not None and state.detach() == 0 and not connection.is_closed():
        connection._protocol.release_statement(state)


#: A statement of the connection's missing (26000), or one of its name already there
#: (42P05): see ``Connection._recover``.
STATEMENT_LOST = (
    exceptions.InvalidSQLStatementNameError,
    exceptions.DuplicatePreparedStatementError,
)


class PreparedStatement:
    """A prepared statement, from :meth:`Connection.prepare`."""

    __slots__ = ("_connection", "_query", "_state", "_last_status", "_release_ctr", "__weakref__")

    def __init__(self, connection, query: str, state) -> None:
        self._connection = connection
        self._query = query
        self._state = state
        self._last_status: str | None = None
        self._release_ctr = release_counter(connection)
        state.attach()

    def __del__(self) -> None:
        release_state(self._connection, getattr(self, "_state", None))

    def _check_open(self, what: str) -> None:
        if self._state.closed:
            raise exceptions.InterfaceError(
                f"cannot call PreparedStatement.{what}(): the prepared statement is closed"
            )
        self._connection._check_open()

    @guard_released("PreparedStatement")
    def get_name(self) -> str:
        """The statement's server-side name ('' for the unnamed statement)."""
        return self._state.name

    @guard_released("PreparedStatement")
    def get_query(self) -> str:
        """The query text."""
        return self._query

    @guard_released("PreparedStatement")
    def get_statusmsg(self) -> str | None:
        """The command status of the last execution (``'SELECT 3'``...)."""
        return self._last_status

    @guard_released("PreparedStatement")
    def get_parameters(self) -> tuple:
        """The parameter types, as :class:`ferropg.types.Type` tuples."""
        return tuple(self._type(oid) for oid in self._state.param_types)

    @guard_released("PreparedStatement")
    def get_attributes(self) -> tuple:
        """The result columns, as :class:`ferropg.types.Attribute` tuples."""
        return tuple(Attribute(name, self._type(oid)) for name, oid, *_ in self._state.columns)

    def _type(self, oid: int) -> Type:
        if oid in BUILTIN_TYPES:
            return builtin_type(oid)
        info = self._connection._protocol.type_info(oid)
        if info is None:
            return builtin_type(oid)
        schema, name, kind, elem = info
        if kind == "array" and elem is not None:
            # asyncpg names an array type after its element.
            elem_type = self._type(elem)
            return Type(oid, elem_type.name + "[]", kind, elem_type.schema)
        return Type(oid, name, kind, schema)

    async def _run(self, args: tuple, limit: int, timeout: float | None, want_rows: bool):
        con = self._connection
        timeout = con._timeout(timeout)
        await con._ready_for_operation(timeout)
        with con._log_query(self._query, args, timeout):
            if want_rows and not self._state.returns_rows:
                want_rows = False
            for attempt in (0, 1):
                fut = con._protocol.execute_statement(self._state, args, limit, want_rows, "", True)
                try:
                    rows, _suspended, status = await con._wait(fut, timeout)
                    break
                except exceptions.OutdatedSchemaCacheError:
                    # The connection dropped its caches; this statement's codecs are
                    # stale too, and only a new prepare() can give it fresh ones.
                    self._state.mark_closed()
                    raise
                except STATEMENT_LOST:
                    # Behind a pooler the connection just went to pooler mode, where
                    # this statement runs unnamed: once more, if nothing ran.
                    if attempt or not con._statement_lost():
                        raise
            self._last_status = status
            return rows

    @guard_released("PreparedStatement")
    async def fetch(self, *args: Any, timeout: float | None = None) -> list:
        """Runs the statement and returns every row."""
        self._check_open("fetch")
        return await self._run(args, 0, timeout, True)

    @guard_released("PreparedStatement")
    async def fetchrow(self, *args: Any, timeout: float | None = None):
        """Runs the statement and returns its first row, or None."""
        self._check_open("fetchrow")
        rows = await self._run(args, 1, timeout, True)
        return rows[0] if rows else None

    @guard_released("PreparedStatement")
    async def fetchval(self, *args: Any, column: int = 0, timeout: float | None = None) -> Any:
        """Runs the statement and returns one value of its first row, or None."""
        self._check_open("fetchval")
        rows = await self._run(args, 1, timeout, True)
        return rows[0][column] if rows else None

    @guard_released("PreparedStatement")
    async def fetchmany(self, args: Any, *, timeout: float | None = None) -> list:
        """Runs the statement once per argument sequence; returns all their rows."""
        self._check_open("fetchmany")
        con = self._connection
        timeout = con._timeout(timeout)
        await con._ready_for_operation(timeout)
        return await con._wait(
            con._loop.create_task(con._stream_many(self._state, args, True)), timeout
        )

    @guard_released("PreparedStatement")
    async def executemany(self, args: Any, *, timeout: float | None = None) -> None:
        """Runs the statement once per argument sequence, atomically."""
        self._check_open("executemany")
        con = self._connection
        timeout = con._timeout(timeout)
        await con._ready_for_operation(timeout)
        await con._wait(con._loop.create_task(con._stream_many(self._state, args, False)), timeout)

    @guard_released("PreparedStatement")
    async def explain(self, *args: Any, analyze: bool = False) -> Any:
        """The plan of the statement as parsed JSON (``analyze=True`` runs it, rolled back)."""
        self._check_open("explain")
        query = "EXPLAIN (FORMAT JSON, VERBOSE"
        if analyze:
            query += ", ANALYZE) "
        else:
            query += ") "
        query += self._query
        con = self._connection
        if analyze:
            tr = con.transaction()
            await tr.start()
            try:
                data = await con.fetchval(query, *args)
            finally:
                await tr.rollback()
        else:
            data = await con.fetchval(query, *args)
        return json.loads(data)

    @guard_released("PreparedStatement")
    def cursor(
        self, *args: Any, prefetch: int | None = None, timeout: float | None = None
    ) -> cursor.CursorFactory:
        """A cursor over this statement's rows."""
        self._check_open("cursor")
        return cursor.CursorFactory(
            self._connection, self._query, self._state, args, prefetch, timeout, None
        )

    def __repr__(self) -> str:
        return f"<ferropg.PreparedStatement name={self._state.name!r} query={self._query!r}>"

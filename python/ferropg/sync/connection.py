"""The blocking connection: asyncpg's Connection API, each call returning its result."""

from __future__ import annotations

import asyncio
import functools
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from .. import connection as _async
from ..protocol import Record
from ._runner import Runner

__all__ = ("Connection", "Cursor", "PreparedStatement", "Transaction", "connect")


def _blocking(name: str, source: type = _async.Connection) -> Callable[..., Any]:
    """A method that runs ``source``'s coroutine method ``name`` on the wrapped object
    and returns its result; the docstring is the async method's."""

    def method(self: _Wrapper, *args: Any, **kwargs: Any) -> Any:
        return self._owner._call(getattr(self._wrapped, name), args, kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = getattr(source, name).__doc__
    return method


def _plain(name: str, source: type = _async.Connection) -> Callable[..., Any]:
    """A method that forwards a non-blocking method ``name`` as it is."""

    def method(self: _Wrapper, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._wrapped, name)(*args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = getattr(source, name).__doc__
    return method


#: What :meth:`Connection._fast` returns when the fast path does not apply.
_MISS = object()


class _Wrapper:
    """Something of the async face, used through a blocking connection (its owner)."""

    _owner: Connection
    _wrapped: Any


class Connection(_Wrapper):
    """A connection to a PostgreSQL server whose methods block until they are done.

    The API is :class:`ferropg.Connection`'s, without ``await``. Make one with
    :func:`connect`. A connection is used by one thread at a time (a second thread's
    call while one is under way raises :class:`~ferropg.exceptions.InterfaceError`).
    Listener callbacks run inside the connection's calls, or while :meth:`poll` waits.
    """

    def __init__(self, con: _async.Connection, runner: Runner) -> None:
        self._wrapped = con
        self._runner = runner
        self._owner = self
        runner.attach(con._protocol, con._transport)

    def _call(self, method: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        """Runs the coroutine ``method(*args, **kwargs)`` to its end."""
        runner = self._runner
        if not runner.claim(False):
            runner.refuse()
        try:
            return runner.run(method(*args, **kwargs))
        finally:
            runner.release()

    def _fast(self, query: str, args: tuple, limit: int, want_rows: bool) -> Any:
        """The async face's fast path without the loop: the protocol's future, fed from
        the socket. Returns ``_MISS`` when it does not apply (the caller then runs the
        async method)."""
        con = self._wrapped
        runner = self._runner
        if not runner.claim(False):
            runner.refuse()
        try:
            fut = con._start_fast(query, args, limit, want_rows, runner.direct)
            if fut is None:
                return _MISS
            try:
                # The socket read in the extension answers the call; the loop is
                # needed only when it cannot, or when the answer scheduled callbacks.
                if not (runner.direct and runner.read_socket(runner.fd, fut)) or runner.loop._ready:
                    runner.finish(fut)
                return fut.result()
            except KeyboardInterrupt:
                # An interrupt stops the query on the server, as a cancelled await does.
                con._abandon(fut)
                raise
            except BaseException as exc:
                return runner.run(con._fast_failed(exc, fut, query, args, limit, want_rows))
        finally:
            runner.release()

    # ------------------------------------------------------------------ queries

    def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        """Runs an SQL command for its effect and returns its status, e.g.
        ``'INSERT 0 1'``; without ``args`` the text may hold several statements."""
        if timeout is None:
            status = self._fast(query, args, 0, False)
            if status is not _MISS:
                return status
        return self._call(self._wrapped.execute, (query, *args), {"timeout": timeout})

    def fetch(
        self, query: str, *args: Any, timeout: float | None = None, record_class: Any = None
    ) -> list:
        """Runs a query and returns every row as a list of Records."""
        if timeout is None and record_class is None:
            rows = self._fast(query, args, 0, True)
            if rows is not _MISS:
                return rows
        kwargs = {"timeout": timeout, "record_class": record_class}
        return self._call(self._wrapped.fetch, (query, *args), kwargs)

    def fetchrow(
        self, query: str, *args: Any, timeout: float | None = None, record_class: Any = None
    ) -> Any:
        """Runs a query and returns its first row, or None."""
        if timeout is None and record_class is None:
            rows = self._fast(query, args, 1, True)
            if rows is not _MISS:
                return rows[0] if rows else None
        kwargs = {"timeout": timeout, "record_class": record_class}
        return self._call(self._wrapped.fetchrow, (query, *args), kwargs)

    def fetchval(
        self, query: str, *args: Any, column: int | str = 0, timeout: float | None = None
    ) -> Any:
        """Runs a query and returns one value of its first row, or None."""
        if timeout is None:
            rows = self._fast(query, args, 1, True)
            if rows is not _MISS:
                return rows[0][column] if rows else None
        kwargs = {"column": column, "timeout": timeout}
        return self._call(self._wrapped.fetchval, (query, *args), kwargs)

    executemany = _blocking("executemany")
    fetchmany = _blocking("fetchmany")
    reset = _blocking("reset")
    reload_schema_state = _blocking("reload_schema_state")
    set_type_codec = _blocking("set_type_codec")
    reset_type_codec = _blocking("reset_type_codec")
    set_builtin_type_codec = _blocking("set_builtin_type_codec")
    copy_from_table = _blocking("copy_from_table")
    copy_from_query = _blocking("copy_from_query")
    copy_to_table = _blocking("copy_to_table")
    copy_records_to_table = _blocking("copy_records_to_table")
    add_listener = _blocking("add_listener")
    remove_listener = _blocking("remove_listener")

    is_closed = _plain("is_closed")
    is_in_transaction = _plain("is_in_transaction")
    get_server_pid = _plain("get_server_pid")
    get_server_version = _plain("get_server_version")
    get_settings = _plain("get_settings")
    get_reset_query = _plain("get_reset_query")
    add_log_listener = _plain("add_log_listener")
    remove_log_listener = _plain("remove_log_listener")
    add_termination_listener = _plain("add_termination_listener")
    remove_termination_listener = _plain("remove_termination_listener")
    add_query_logger = _plain("add_query_logger")
    remove_query_logger = _plain("remove_query_logger")
    query_logger = _plain("query_logger")

    def prepare(
        self,
        query: str,
        *,
        name: str | None = None,
        timeout: float | None = None,
        record_class: Any = None,
    ) -> PreparedStatement:
        """Prepares a statement for repeated use."""
        stmt = self._call(
            self._wrapped.prepare,
            (query,),
            {"name": name, "timeout": timeout, "record_class": record_class},
        )
        return PreparedStatement(self, stmt)

    def cursor(
        self,
        query: str,
        *args: Any,
        prefetch: int | None = None,
        timeout: float | None = None,
        record_class: Any = None,
    ) -> Cursor:
        """A server-side cursor over ``query``'s rows (inside a transaction): iterate
        over it, or read it with :meth:`Cursor.fetch`, :meth:`~Cursor.fetchrow` and
        :meth:`~Cursor.forward`."""
        factory = self._wrapped.cursor(
            query, *args, prefetch=prefetch, timeout=timeout, record_class=record_class
        )
        return Cursor(self, factory, timeout)

    def transaction(
        self, *, isolation: str | None = None, readonly: bool = False, deferrable: bool = False
    ) -> Transaction:
        """A transaction block (a savepoint when nested), for ``with``."""
        tr = self._wrapped.transaction(
            isolation=isolation, readonly=readonly, deferrable=deferrable
        )
        return Transaction(self, tr)

    def poll(self, timeout: float = 0) -> None:
        """Lets the connection take in what the server sent unasked for up to
        ``timeout`` seconds, running listener callbacks (notifications, notices) as
        their messages arrive."""
        self._call(asyncio.sleep, (max(timeout, 0),), {})

    # ------------------------------------------------------------------ life

    def close(self, *, timeout: float | None = None) -> None:
        """Closes the connection gracefully (a query under way is cancelled first)."""
        try:
            if not self._runner.loop.is_closed():
                self._call(self._wrapped.close, (), {"timeout": timeout})
        finally:
            self._runner.close()

    def terminate(self) -> None:
        """Closes the connection at once."""
        self._wrapped.terminate()
        self._runner.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        runner = getattr(self, "_runner", None)
        if runner is None or runner.loop.is_closed():
            return
        if not self._wrapped.is_closed():
            warnings.warn(
                f"unclosed connection {self!r}", ResourceWarning, stacklevel=2, source=self
            )
            self._wrapped.terminate()
        runner.loop.close()

    def __repr__(self) -> str:
        state = "closed" if self.is_closed() else "open"
        return f"<ferropg.sync.Connection {state} at 0x{id(self):x}>"


class PreparedStatement(_Wrapper):
    """A prepared statement of a blocking connection (:meth:`Connection.prepare`)."""

    def __init__(self, owner: Connection, stmt: Any) -> None:
        self._owner = owner
        self._wrapped = stmt

    _source = _async.prepared_stmt.PreparedStatement
    fetch = _blocking("fetch", _source)
    fetchrow = _blocking("fetchrow", _source)
    fetchval = _blocking("fetchval", _source)
    fetchmany = _blocking("fetchmany", _source)
    executemany = _blocking("executemany", _source)
    explain = _blocking("explain", _source)
    get_name = _plain("get_name", _source)
    get_query = _plain("get_query", _source)
    get_statusmsg = _plain("get_statusmsg", _source)
    get_parameters = _plain("get_parameters", _source)
    get_attributes = _plain("get_attributes", _source)
    del _source

    def cursor(
        self, *args: Any, prefetch: int | None = None, timeout: float | None = None
    ) -> Cursor:
        """A server-side cursor over this statement's rows (inside a transaction)."""
        factory = self._wrapped.cursor(*args, prefetch=prefetch, timeout=timeout)
        return Cursor(self._owner, factory, timeout)

    def __repr__(self) -> str:
        return repr(self._wrapped).replace("<ferropg.", "<ferropg.sync.", 1)


class Cursor(_Wrapper):
    """A server-side cursor of a blocking connection. Iterating reads rows ``prefetch``
    at a time; :meth:`fetch`, :meth:`fetchrow` and :meth:`forward` move it by hand (the
    first of them opens it). Either way it needs an open transaction."""

    def __init__(self, owner: Connection, factory: Any, timeout: float | None) -> None:
        self._owner = owner
        self._factory = factory
        self._timeout = timeout
        self._wrapped: Any = None

    def __iter__(self) -> Iterator[Any]:
        rows = self._factory.__aiter__()
        while True:
            try:
                yield self._owner._call(rows.__anext__, (), {})
            except StopAsyncIteration:
                return

    def _open(self) -> Any:
        if self._wrapped is None:
            factory = self._factory
            self._wrapped = self._owner._call(functools.partial(_awaited, factory), (), {})
        return self._wrapped

    def fetch(self, n: int, *, timeout: float | None = None) -> list:
        """The next ``n`` rows (fewer at the end)."""
        return self._owner._call(self._open().fetch, (n,), {"timeout": timeout})

    def fetchrow(self, *, timeout: float | None = None) -> Any:
        """The next row, or None at the end."""
        return self._owner._call(self._open().fetchrow, (), {"timeout": timeout})

    def forward(self, n: int, *, timeout: float | None = None) -> int:
        """Skips ``n`` rows; returns how many were skipped."""
        return self._owner._call(self._open().forward, (n,), {"timeout": timeout})


async def _awaited(aw: Any) -> Any:
    return await aw


class Transaction(_Wrapper):
    """A transaction block of a blocking connection: ``with con.transaction():`` commits
    when the block ends and rolls back when it raises; or call :meth:`start`,
    :meth:`commit` and :meth:`rollback`."""

    def __init__(self, owner: Connection, tr: Any) -> None:
        self._owner = owner
        self._wrapped = tr

    _source = _async.Transaction
    start = _blocking("start", _source)
    commit = _blocking("commit", _source)
    rollback = _blocking("rollback", _source)
    del _source

    def __enter__(self) -> Transaction:
        self._owner._call(self._wrapped.__aenter__, (), {})
        return self

    def __exit__(self, *exc: Any) -> None:
        self._owner._call(self._wrapped.__aexit__, exc, {})

    def __repr__(self) -> str:
        return repr(self._wrapped).replace("<ferropg.", "<ferropg.sync.", 1)


def connect(dsn: str | None = None, **kwargs: Any) -> Connection:
    """Connects to a PostgreSQL server and returns a blocking :class:`Connection`.

    The arguments are :func:`ferropg.connect`'s (DSN, keyword arguments, ``PG*``
    variables, service and password files, TLS, ``target_session_attrs``, timeouts),
    except ``loop``: the connection brings its own.
    """
    if "loop" in kwargs:
        raise TypeError("ferropg.sync.connect() takes no loop: the connection has its own")
    kwargs.setdefault("record_class", Record)
    runner = Runner()
    try:
        con = runner.run(_async.connect(dsn, **kwargs))
    except BaseException:
        runner.close()
        raise
    return Connection(con, runner)

"""A pool of blocking connections for threads, with the async pool's knobs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .. import exceptions
from .. import pool as _pool
from ..protocol import Record
from .connection import Connection, connect

__all__ = ("Pool", "PooledConnection", "create_pool")


class PooledConnection:
    """A connection lent by a :class:`Pool`: every attribute is the connection's until
    it goes back, after which using it is an :class:`~ferropg.exceptions.InterfaceError`
    (the connection may be another thread's by then)."""

    __slots__ = ("_con",)

    def __init__(self, con: Connection) -> None:
        self._con: Connection | None = con

    def __getattr__(self, name: str) -> Any:
        con = self._con
        if con is None:
            raise exceptions.InterfaceError(
                f"cannot call Connection.{name}(): connection has been released back to the pool"
            )
        return getattr(con, name)

    def __repr__(self) -> str:
        state = "released" if self._con is None else repr(self._con)
        return f"<ferropg.sync.PooledConnection {state}>"


class _Slot:
    """One connection the pool opened, and what the pool knows of it."""

    __slots__ = ("con", "queries_at_start", "idle_since")

    def __init__(self, con: Connection) -> None:
        self.con = con
        self.queries_at_start = con._wrapped._protocol.queries_count
        self.idle_since = time.monotonic()

    def queries(self) -> int:
        return self.con._wrapped._protocol.queries_count - self.queries_at_start


class Pool:
    """Blocking connections shared by threads. Each :meth:`acquire` lends one
    connection to one thread; :meth:`release` (or the end of the ``with`` block) gives it
    back, reset. See :func:`create_pool` for the parameters."""

    def __init__(
        self,
        dsn: str | None = None,
        *,
        min_size: int = 10,
        max_size: int = 10,
        max_queries: int = 50000,
        max_inactive_connection_lifetime: float = 300.0,
        connect: Callable[..., Connection] | None = None,
        setup: Callable[[PooledConnection], Any] | None = None,
        init: Callable[[Connection], Any] | None = None,
        reset: Callable[[Connection], Any] | None = None,
        reset_advisory_locks: bool = True,
        connection_class: type = Connection,
        record_class: type = Record,
        **connect_kwargs: Any,
    ) -> None:
        if max_size <= 0:
            raise ValueError("max_size is expected to be greater than zero")
        if min_size < 0 or min_size > max_size:
            raise ValueError("min_size is expected to be between 0 and max_size")
        if max_queries <= 0:
            raise ValueError("max_queries is expected to be greater than zero")
        if max_inactive_connection_lifetime < 0:
            raise ValueError("max_inactive_connection_lifetime is expected to be >= 0")
        self._min_size, self._max_size = min_size, max_size
        self._max_queries = max_queries
        self._lifetime = max_inactive_connection_lifetime
        self._connect = connect or _connect_with(connection_class)
        self._setup, self._init, self._reset = setup, init, reset
        self._reset_advisory_locks = bool(reset_advisory_locks)
        #: One of its connections met a transaction-mode pooler: all of them bind
        #: statements unnamed (see ``ferropg.Connection._recover``).
        self._pooler_mode = False
        self._connect_args = (dsn, {**connect_kwargs, "record_class": record_class})
        self._lock = threading.Condition()
        self._idle: list[_Slot] = []
        self._lent: dict[int, tuple[_Slot, PooledConnection]] = {}
        # Connections being opened: they count against max_size already.
        self._opening = 0
        self._closing = False
        try:
            for _ in range(min_size):
                self._idle.append(self._open())
        except BaseException:
            self.terminate()
            raise

    # ------------------------------------------------------------------ sizes

    def get_size(self) -> int:
        """Connections open now, idle or lent (and being opened)."""
        with self._lock:
            return len(self._idle) + len(self._lent) + self._opening

    def get_min_size(self) -> int:
        """The floor kept open."""
        return self._min_size

    def get_max_size(self) -> int:
        """The most connections the pool opens."""
        return self._max_size

    def get_idle_size(self) -> int:
        """Connections waiting to be lent."""
        with self._lock:
            return len(self._idle)

    def is_closing(self) -> bool:
        """Whether :meth:`close` or :meth:`terminate` was called."""
        return self._closing

    def set_connect_args(self, dsn: str | None = None, **connect_kwargs: Any) -> None:
        """Connection arguments for the connections opened from now on."""
        record_class = self._connect_args[1].get("record_class", Record)
        self._connect_args = (dsn, {"record_class": record_class, **connect_kwargs})

    # ------------------------------------------------------------------ lending

    def _open(self) -> _Slot:
        dsn, kwargs = self._connect_args
        con = self._connect(dsn, **kwargs)
        # The session's reset policy lives on the connection the blocking one wraps.
        inner = con._wrapped
        inner._pooled, inner._reset_advisory_locks = True, self._reset_advisory_locks
        if self._pooler_mode:
            _pool._to_pooler_mode(inner)
        try:
            if self._init is not None:
                self._init(con)
        except BaseException:
            con.terminate()
            raise
        return _Slot(con)

    def _fresh_idle(self) -> _Slot | None:
        """An idle connection still worth lending (under the lock); those gone stale
        are closed on the way."""
        now = time.monotonic()
        while self._idle:
            slot = self._idle.pop()
            expired = self._lifetime and now - slot.idle_since > self._lifetime
            if slot.con.is_closed() or expired:
                _discard(slot)
                continue
            return slot
        return None

    def acquire(self, *, timeout: float | None = None) -> _Lease:
        """Lends a connection: ``with pool.acquire() as con:`` gives it back at the end
        of the block; otherwise call :meth:`release`. Waits up to ``timeout`` seconds for
        one to come free (then :class:`TimeoutError`)."""
        return _Lease(self, timeout)

    def _acquire(self, timeout: float | None) -> PooledConnection:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                if self._closing:
                    raise exceptions.InterfaceError("pool is closing")
                slot = self._fresh_idle()
                if slot is not None:
                    proxy = self._lend(slot)
                    break
                if len(self._lent) + self._opening < self._max_size:
                    # Counted before it exists, so that no other thread opens one too many.
                    self._opening += 1
                    proxy = None
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError("no connection came free in time")
                self._lock.wait(left)
        if proxy is None:
            try:
                slot = self._open()
            except BaseException:
                with self._lock:
                    self._opening -= 1
                    self._lock.notify()
                raise
            with self._lock:
                self._opening -= 1
                proxy = self._lend(slot)
        if self._setup is not None:
            try:
                self._setup(proxy)
            except BaseException:
                self.release(proxy)
                raise
        return proxy

    def _lend(self, slot: _Slot) -> PooledConnection:
        """Records ``slot`` as lent (under the lock)."""
        proxy = PooledConnection(slot.con)
        self._lent[id(proxy)] = (slot, proxy)
        return proxy

    def release(self, connection: PooledConnection, *, timeout: float | None = None) -> None:
        """Gives a connection back: its transaction is rolled back and its session
        reset (``reset=`` replaces :meth:`Connection.reset`); one that cannot be reset,
        or that ran ``max_queries`` queries, is closed instead."""
        with self._lock:
            entry = self._lent.get(id(connection))
            if entry is None or entry[1]._con is None:
                raise exceptions.InterfaceError(
                    "Pool.release() received a connection not acquired from this pool, or "
                    "released already"
                )
            slot, proxy = entry
            # Released from here on, but still counted as lent while it is reset, so
            # that no other thread opens a connection in its place meanwhile.
            proxy._con = None
        keep = False
        try:
            if not slot.con.is_closed() and slot.queries() < self._max_queries:
                if self._reset is not None:
                    if slot.con.is_in_transaction():
                        slot.con.execute("ROLLBACK", timeout=timeout)
                    self._reset(slot.con)
                else:
                    slot.con.reset(timeout=timeout)
                keep = not slot.con.is_closed()
        except Exception:
            keep = False
        finally:
            with self._lock:
                self._lent.pop(id(connection), None)
                inner = slot.con._wrapped
                if keep and inner._behind_pooler and not self._pooler_mode:
                    # It met a transaction-mode pooler: so do the others.
                    self._pooler_mode = True
                    for idle in self._idle:
                        _pool._to_pooler_mode(idle.con._wrapped)
                elif keep and self._pooler_mode:
                    _pool._to_pooler_mode(inner)
                if keep and not self._closing:
                    slot.idle_since = time.monotonic()
                    self._idle.append(slot)
                else:
                    _discard(slot)
                self._lock.notify()

    # ------------------------------------------------------------------ shortcuts

    def _with_connection(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self.acquire() as con:
            return getattr(con, method)(*args, **kwargs)

    def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        """:meth:`Connection.execute` on a connection lent for the call."""
        return self._with_connection("execute", query, *args, timeout=timeout)

    def executemany(self, command: str, args: Any, *, timeout: float | None = None) -> None:
        """:meth:`Connection.executemany` on a connection lent for the call."""
        return self._with_connection("executemany", command, args, timeout=timeout)

    def fetch(self, query: str, *args: Any, timeout: float | None = None, **kw: Any) -> list:
        """:meth:`Connection.fetch` on a connection lent for the call."""
        return self._with_connection("fetch", query, *args, timeout=timeout, **kw)

    def fetchrow(self, query: str, *args: Any, timeout: float | None = None, **kw: Any) -> Any:
        """:meth:`Connection.fetchrow` on a connection lent for the call."""
        return self._with_connection("fetchrow", query, *args, timeout=timeout, **kw)

    def fetchval(
        self, query: str, *args: Any, column: int = 0, timeout: float | None = None
    ) -> Any:
        """:meth:`Connection.fetchval` on a connection lent for the call."""
        return self._with_connection("fetchval", query, *args, column=column, timeout=timeout)

    # ------------------------------------------------------------------ closing

    def expire_connections(self) -> None:
        """Closes the idle connections now and each lent one when it comes back, so that
        new ones (with new connection arguments) take their place."""
        with self._lock:
            idle, self._idle = self._idle, []
            for slot, _proxy in self._lent.values():
                slot.queries_at_start = -(self._max_queries + 1)  # closed on release
        for slot in idle:
            _discard(slot)

    def close(self) -> None:
        """Waits for every lent connection to come back, then closes them all."""
        with self._lock:
            self._closing = True
            while self._lent or self._opening:
                self._lock.wait()
            idle, self._idle = self._idle, []
        for slot in idle:
            try:
                slot.con.close()
            except Exception:
                slot.con.terminate()

    def terminate(self) -> None:
        """Closes every connection at once, lent ones included."""
        with self._lock:
            self._closing = True
            slots = self._idle + [slot for slot, _ in self._lent.values()]
            self._idle = []
            for _slot, proxy in self._lent.values():
                proxy._con = None
            self._lent.clear()
            self._lock.notify_all()
        for slot in slots:
            _discard(slot)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Lease:
    """What :meth:`Pool.acquire` returns: a context manager, or (through :meth:`get`)
    the connection itself."""

    __slots__ = ("_pool", "_timeout", "_proxy")

    def __init__(self, pool: Pool, timeout: float | None) -> None:
        self._pool, self._timeout = pool, timeout
        self._proxy: PooledConnection | None = None

    def get(self) -> PooledConnection:
        """The connection, for callers that release it themselves."""
        return self._pool._acquire(self._timeout)

    def __enter__(self) -> PooledConnection:
        self._proxy = self._pool._acquire(self._timeout)
        return self._proxy

    def __exit__(self, *exc: object) -> None:
        proxy, self._proxy = self._proxy, None
        if proxy is not None:
            self._pool.release(proxy)


def _discard(slot: _Slot) -> None:
    try:
        slot.con.terminate()
    except Exception:  # noqa: S110 - a connection already gone needs nothing more
        pass


def _connect_with(connection_class: type) -> Callable[..., Connection]:
    def opener(dsn: str | None, **kwargs: Any) -> Connection:
        con = connect(dsn, **kwargs)
        if connection_class is not Connection:
            con.__class__ = connection_class
        return con

    return opener


def create_pool(dsn: str | None = None, **kwargs: Any) -> Pool:
    """A pool of blocking connections, opened at once (``min_size`` of them).

    The parameters are :func:`ferropg.create_pool`'s: ``min_size``, ``max_size``,
    ``max_queries``, ``max_inactive_connection_lifetime``, ``connect``, ``setup``
    (called with each lent connection), ``init`` (each new connection), ``reset`` (on
    release, instead of :meth:`Connection.reset`, after the rollback), ``reset_advisory_locks``,
    ``connection_class``, ``record_class``, and :func:`connect`'s arguments. Use it in
    a ``with`` block, or call :meth:`Pool.close`.
    """
    return Pool(dsn, **kwargs)

"""Connection pools: ``create_pool()``, :class:`Pool` and the proxies it hands out.

The API and behaviour follow asyncpg 0.32's pool:

* A pool owns ``max_size`` *holders* (``pool._holders``); each holds at most one
  connection (``holder._con``).  Idle holders wait in ``pool._queue``, newest first,
  and holders whose connection is alive are handed out before ones that must connect.
* ``init_size`` connections are opened when the pool is initialised (``await pool`` or
  ``async with pool``); ``min_size`` is a floor that a background task
  (``pool._maintenance_task``) restores when connections are lost, retrying with
  exponential back-off (1 s doubling to 60 s).
* ``acquire()`` hands out a :class:`PoolConnectionProxy`; once the connection goes back
  every call on the proxy raises InterfaceError.  ``release()`` resets the session
  (``Connection.reset()`` or the user's ``reset`` callback) and closes the connection
  instead when it reached ``max_queries`` or was expired; a failed reset terminates it.
* Idle connections above the floor close after ``max_inactive_connection_lifetime``.

How the pool learns that a connection went away: through its own proxy's ``close()`` and
``terminate()``, through the pool's own close/terminate paths, and, for everything else
(the server closing the session, ``terminate()`` on the raw connection), from the
protocol's connection-lost future.  A connection that supports it is also given
``con._pool_holder`` (a weak reference to its holder) so that its clean-up can tell the
holder at once.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import inspect
import logging
import weakref
from collections.abc import Callable
from typing import Any, Optional

from . import connection as _connection
from . import exceptions, prepared_stmt
from ._asyncpg_private import HolderQueueHooks
from .protocol import Record

__all__ = ("Pool", "PoolAcquireContext", "PoolConnectionProxy", "create_pool")

logger = logging.getLogger(__name__)

#: Back-off between attempts to restore the ``min_size`` floor: first, then the cap.
_FLOOR_RETRY_FIRST = 1.0
_FLOOR_RETRY_MAX = 60.0

#: ``Pool.close()`` logs a warning when waiting for releases takes longer than this.
_LONG_CLOSE_WARNING_AFTER = 60.0


async def _within(aw: Any, timeout: Optional[float]) -> Any:
    """Awaits ``aw`` in this task, raising TimeoutError after ``timeout`` seconds."""
    if timeout is None:
        return await aw
    async with asyncio.timeout(timeout):
        return await aw


def _mark_coroutine_function(func: Callable[..., Any]) -> Callable[..., Any]:
    # A plain function returning a coroutine, flagged so that introspection treats it
    # like the ``async def`` method it stands for (Python 3.12+ only).
    mark = getattr(inspect, "markcoroutinefunction", None)
    return mark(func) if mark is not None else func


def _released_error(method: str) -> exceptions.InterfaceError:
    return exceptions.InterfaceError(
        f"cannot call Connection.{method}(): connection has been released back to the pool"
    )


# --------------------------------------------------------------------------- proxies

#: ``isinstance(proxy, Connection)`` is true when ``Connection``'s metaclass recognises
#: subclasses of ``connection._ConnectionProxy`` (asyncpg's arrangement).
_ProxyBase: type = getattr(_connection, "_ConnectionProxy", object)


class PoolConnectionProxy(_ProxyBase):  # type: ignore[misc, valid-type]
    """What :meth:`Pool.acquire` returns: the pooled connection, until it is released.

    Every public :class:`~ferropg.Connection` method is available under the same name and
    signature; other attributes are read from the connection.  After the connection goes
    back to the pool, calling a method raises InterfaceError.
    """

    __slots__ = ("_con", "_holder")

    def __init__(self, holder: PoolConnectionHolder, con: _connection.Connection) -> None:
        self._con: Optional[_connection.Connection] = con
        self._holder = holder
        # Callbacks (listeners, termination listeners) receive the proxy, not the raw
        # connection: the connection hands out ``_proxy`` when it is set.
        con._proxy = self

    def __getattr__(self, attr: str) -> Any:
        if attr in PoolConnectionProxy.__slots__:
            raise AttributeError(attr)
        con = self._con
        if con is None:
            raise AttributeError(f"{attr!r}: the connection has been released back to the pool")
        return getattr(con, attr)

    def _detach(self) -> Optional[_connection.Connection]:
        """Cuts the proxy from its connection; returns the connection (None if done)."""
        con = self._con
        if con is None:
            return None
        self._con = None
        if getattr(con, "_proxy", None) is self:
            con._proxy = None
        return con

    def _live(self, method: str) -> _connection.Connection:
        con = self._con
        if con is None:
            raise _released_error(method)
        return con

    def __repr__(self) -> str:
        if self._con is None:
            return f"<{type(self).__name__} [released] {id(self):#x}>"
        return f"<{type(self).__name__} {self._con!r} {id(self):#x}>"


def _forwarding_method(name: str, target: Callable[..., Any]) -> Callable[..., Any]:
    """A proxy method calling the connection's ``name`` (as overridden by its class)."""

    def forward(self: PoolConnectionProxy, *args: Any, **kwargs: Any) -> Any:
        con = self._con
        if con is None:
            # Raised at call time, before any coroutine exists.
            raise _released_error(name)
        return getattr(type(con), name)(con, *args, **kwargs)

    functools.update_wrapper(forward, target)
    if inspect.iscoroutinefunction(target):
        _mark_coroutine_function(forward)
    return forward


def _proxy_terminate(self: PoolConnectionProxy) -> None:
    con = self._live("terminate")
    holder = self._holder
    try:
        type(con).terminate(con)
    finally:
        holder._connection_gone(con)


def _proxy_close(self: PoolConnectionProxy, *args: Any, **kwargs: Any) -> Any:
    con = self._live("close")
    return self._holder._close_connection(con, type(con).close(con, *args, **kwargs))


def _install_proxy_methods() -> None:
    """Gives PoolConnectionProxy one method per public Connection method."""
    special = {"close": _proxy_close, "terminate": _proxy_terminate}
    for name in dir(_connection.Connection):
        if name.startswith("_") or name in vars(PoolConnectionProxy):
            continue
        target = getattr(_connection.Connection, name)
        if not inspect.isfunction(target):
            continue
        if name in special:
            method = functools.update_wrapper(special[name], target)
            if inspect.iscoroutinefunction(target):
                _mark_coroutine_function(method)
        else:
            method = _forwarding_method(name, target)
        setattr(PoolConnectionProxy, name, method)


_install_proxy_methods()


def _note_release(con: _connection.Connection) -> None:
    """What a connection goes through when its user gives it back: objects made from it
    (prepared statements, cursors, transactions) stop working, and listeners left on it
    are reported."""
    hook = getattr(con, "_on_release", None)
    if hook is not None:
        hook()
        return
    con._pool_release_ctr = getattr(con, "_pool_release_ctr", 0) + 1
    # Attributed to the caller of Pool.release().
    con._warn_dangling_listeners(stacklevel=3)


def _to_pooler_mode(con: _connection.Connection) -> None:
    """Switches ``con`` to pooler mode (its protocol binds every statement unnamed)."""
    if not con.is_closed():
        con._protocol.enter_pooler_mode()
        con._behind_pooler = True


async def _reset_before_user_hook(con: _connection.Connection) -> None:
    """The part of a reset that a user ``reset`` callback cannot skip: listeners go,
    and an open transaction is rolled back (reported when no ``async with`` owns it)."""
    hook = getattr(con, "_reset", None)
    if hook is not None:
        await hook()
        return
    con._check_open()
    con._clear_listeners()
    xact = con._top_xact
    if con.is_in_transaction() or xact is not None:
        if xact is None or not xact._managed:
            con._loop.call_exception_handler(
                {"message": f"Resetting connection with an active transaction {con!r}"}
            )
        con._top_xact = None
        await con.execute("ROLLBACK")


def _reset_error(fut: Any) -> Optional[BaseException]:
    """The error a reset's future ended with (cancelled: CancelledError), or None."""
    if fut.cancelled():
        return asyncio.CancelledError()
    return fut.exception()


def _finish(done: asyncio.Future) -> None:
    """Completes a release's own future, unless its waiter gave up on it."""
    if not done.done():
        done.set_result(None)


# --------------------------------------------------------------------------- holders


class _HolderQueue(HolderQueueHooks):
    """The idle holders, as a stack: the most recently returned comes out first, except
    that a holder with a live connection always comes out before one without.

    ``get()`` waits, first come first served, when the stack is empty.  (``qsize()`` and
    ``empty()``, asyncio.Queue's, come from ``HolderQueueHooks``.)
    """

    __slots__ = ("_loop", "_stack", "_getters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._stack: list[PoolConnectionHolder] = []
        self._getters: collections.deque[asyncio.Future] = collections.deque()

    def put_nowait(self, holder: PoolConnectionHolder) -> None:
        if holder in self._stack:
            # Every path back into the queue goes through one check-in; never twice.
            return
        self._stack.append(holder)
        self._wake_one()

    def get_nowait(self) -> PoolConnectionHolder:
        if not self._stack:
            raise asyncio.QueueEmpty
        stack = self._stack
        for i in range(len(stack) - 1, -1, -1):
            if stack[i].is_connected():
                return stack.pop(i)
        return stack.pop()

    def take_ready(self) -> Optional[PoolConnectionHolder]:
        """Takes the newest holder when it is ready to hand out at once and nobody
        waits ahead of the caller; else None."""
        stack = self._stack
        if stack and not self._getters and stack[-1].is_ready():
            return stack.pop()
        return None

    def take_disconnected(self) -> Optional[PoolConnectionHolder]:
        """Takes the newest holder without a live connection (for the floor task), or
        None when every queued holder is connected."""
        for i in range(len(self._stack) - 1, -1, -1):
            if not self._stack[i].is_connected():
                return self._stack.pop(i)
        return None

    async def get(self) -> PoolConnectionHolder:
        while not self._stack:
            waiter = self._loop.create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except BaseException:
                try:
                    self._getters.remove(waiter)
                except ValueError:
                    pass
                if waiter.done() and not waiter.cancelled() and self._stack:
                    # We were woken for a holder we will not take: pass it on.
                    self._wake_one()
                raise
        return self.get_nowait()

    def _wake_one(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


#: ``PoolConnectionHolder._in_use`` of a connection checked out, until someone waits
#: for its release.
_IN_USE = object()


class PoolConnectionHolder:
    """One slot of a pool: at most one connection, and whether someone is using it."""

    __slots__ = (
        "_pool",
        "_con",
        "_proxy",
        "_in_use",
        "_inactive_callback",
        "_idle_since",
        "_timeout",
        "_generation",
        "_max_queries",
        "_max_inactive_time",
        "_setup",
        "__weakref__",
    )

    def __init__(
        self,
        pool: Pool,
        *,
        max_queries: int,
        setup: Optional[Callable[[PoolConnectionProxy], Any]],
        max_inactive_time: float,
    ) -> None:
        self._pool = pool
        self._con: Optional[_connection.Connection] = None
        self._proxy: Optional[PoolConnectionProxy] = None
        #: While the connection is checked out: ``_IN_USE``, or the future that
        #: ``wait_until_released()`` waits on (made only then: acquire is hot).
        self._in_use: Any = None
        self._inactive_callback: Optional[asyncio.TimerHandle] = None
        #: When the connection last came back (the loop's clock).
        self._idle_since = 0.0
        #: The acquire() timeout, the default for the matching release().
        self._timeout: Optional[float] = None
        #: The pool generation the connection was opened in (expire_connections()).
        self._generation: Optional[int] = None
        self._max_queries = max_queries
        self._max_inactive_time = max_inactive_time
        self._setup = setup

    def __repr__(self) -> str:
        state = "in use" if self._in_use is not None else "idle"
        return f"<{type(self).__name__} {state} {self._con!r}>"

    def is_connected(self) -> bool:
        """True when the holder has a connection that is not closed."""
        con = self._con
        return False if con is None else not con.is_closed()

    def is_idle(self) -> bool:
        """True when nobody has the connection checked out."""
        return self._in_use is None

    # ------------------------------------------------------------ connecting

    async def connect(self) -> None:
        """Opens this holder's connection (the holder must have none)."""
        if self._con is not None:
            raise exceptions.InternalClientError(
                "PoolConnectionHolder.connect(): the holder has a connection already"
            )
        pool = self._pool
        # Taken before connecting: an expire_connections() meanwhile makes it stale.
        generation = pool._generation
        con = await pool._get_new_connection()
        if pool.is_closing():
            await con.close()
            raise exceptions.InterfaceError("pool is closing")
        if con.is_closed():
            raise exceptions.ConnectionDoesNotExistError(
                "connection was closed during pool initialization"
            )
        self._con = con
        self._generation = generation
        self._watch(con)
        self._cancel_inactive_timer()
        self._arm_inactive_timer()

    def _watch(self, con: _connection.Connection) -> None:
        """Arranges to hear when ``con`` goes away, without keeping anything alive."""
        holder_ref = weakref.ref(self)
        con._pool_holder = holder_ref
        con_ref = weakref.ref(con)

        def lost(_fut: Any) -> None:
            holder, lost_con = holder_ref(), con_ref()
            if holder is not None and lost_con is not None:
                holder._connection_lost(lost_con)

        con._protocol._closed_waiter().add_done_callback(lost)

    # ------------------------------------------------------- acquire/release

    async def acquire(self) -> PoolConnectionProxy:
        """Makes sure there is a usable connection, runs ``setup``, checks it out."""
        con = self._con
        if con is None or con.is_closed():
            self._con = None
            if con is not None:
                # Lost while idle: finish its clean-up (termination listeners...).
                con.terminate()
            await self.connect()
        elif self._generation != self._pool._generation:
            # Expired by expire_connections(): replace it, closing the old one politely.
            self._con = None
            self._pool._spawn(_close_quietly(con, self._timeout))
            await self.connect()

        # The inactivity timer stays armed: when it fires on a connection in use, or
        # used since, it re-arms or stops (see _deactivate_inactive_connection).
        con = self._con
        assert con is not None
        if self._setup is None:
            return self.check_out(con)
        self._proxy = proxy = PoolConnectionProxy(self, con)
        try:
            await self._setup(proxy)
        except BaseException:
            # The session may be half set up: drop it; the next acquire reconnects.
            self._proxy = None
            await self._close_connection(con, con.close())
            raise
        self._in_use = _IN_USE
        return proxy

    def is_ready(self) -> bool:
        """Whether :meth:`check_out` may hand the connection out as it is: live, of
        the pool's generation, with no ``setup`` to run."""
        con = self._con
        return (
            con is not None
            and self._setup is None
            and self._generation == self._pool._generation
            and not con.is_closed()
        )

    def check_out(self, con: _connection.Connection) -> PoolConnectionProxy:
        """Hands ``con`` out (nothing left to wait for)."""
        self._proxy = proxy = PoolConnectionProxy(self, con)
        self._in_use = _IN_USE
        return proxy

    async def release(
        self, timeout: Optional[float], con: Optional[_connection.Connection] = None
    ) -> None:
        """Resets the checked-out connection ``con`` (default: the holder's) and puts the
        holder back in the queue, or closes the connection when it is spent, expired or
        broken."""
        if con is not None and (self._con is not con or self._in_use is None):
            # The connection was lost under its user, which already freed the holder (and
            # it may be checked out again with a new connection): nothing left to release.
            return
        if self._in_use is None:
            raise exceptions.InternalClientError(
                "PoolConnectionHolder.release() called on a free connection holder"
            )
        con = self._con
        assert con is not None
        if con.is_closed():
            # Lost or aborted under its user: finish the clean-up, which frees the holder.
            con.terminate()
            self._connection_gone(con)
            return

        self._timeout = None
        pool = self._pool
        if con._protocol.queries_count >= self._max_queries or self._generation != pool._generation:
            # Used up (max_queries) or expired: a fresh connection replaces it.
            await self._close_connection(con, con.close(timeout=timeout))
            return

        try:
            await _within(self._reset(con, timeout), timeout)
        except BaseException:
            # A session we could not reset is not safe to hand out again.
            if self._con is con:
                con.terminate()
                self._connection_gone(con)
            raise
        if self._con is not con:
            # The connection went away while we waited; that already freed the holder.
            return
        self._checked_in()

    def release_started(self, con: _connection.Connection) -> Any:
        """The release without a task: when the reset needs at most one request and
        nothing else (no ``reset`` callback, no timeout, no cancellation in flight, a
        connection neither spent nor expired), sends it and returns a future that
        completes once the holder is back in the queue, or None when it already is.
        Returns NotImplemented, having done nothing, when :meth:`release` must run.

        The rest of the release runs in the reply's callback, so a cancelled caller
        does not stop it."""
        if (
            self._con is not con
            or self._in_use is None
            or self._timeout is not None
            or self._pool._reset is not None
            or con.is_closed()
            or con._cancellations
            or con._protocol._is_cancelling()
            or con._protocol.queries_count >= self._max_queries
            or self._generation != self._pool._generation
        ):
            return NotImplemented
        started = con._start_pool_reset()
        if started is None:
            return NotImplemented
        fut, at_release = started
        if fut is None:
            self._checked_in()
            return None
        done = self._pool._loop.create_future()
        fut.add_done_callback(functools.partial(self._reset_answered, con, at_release, done))
        return done

    def _reset_answered(
        self, con: _connection.Connection, at_release: str, done: asyncio.Future, fut: Any
    ) -> None:
        """The reply to a release's reset (see :meth:`release_started`)."""
        error = _reset_error(fut)
        if error is None:
            con._protocol.clear_footprint()
            if self._con is con:
                self._checked_in()
            _finish(done)
        elif isinstance(error, prepared_stmt.STATEMENT_LOST):
            task = self._pool._spawn(self._reset_lost_statement(con, at_release))
            task.add_done_callback(lambda _t: _finish(done))
        else:
            # A session we could not reset is not safe to hand out again.
            if self._con is con:
                con.terminate()
                self._connection_gone(con)
            _finish(done)

    async def _reset_lost_statement(self, con: _connection.Connection, at_release: str) -> None:
        try:
            await con._reset_after_lost_statement(at_release, None)
            con._protocol.clear_footprint()
        except BaseException:
            if self._con is con:
                con.terminate()
                self._connection_gone(con)
            raise
        if self._con is con:
            self._checked_in()

    def _checked_in(self) -> None:
        """The end of a successful release."""
        self._release()
        self._arm_inactive_timer()

    async def _reset(self, con: _connection.Connection, timeout: Optional[float]) -> None:
        loop = self._pool._loop
        deadline = None if timeout is None else loop.time() + timeout
        if con._cancellations or con._protocol._is_cancelling():
            # A timed-out or cancelled query is still being cancelled: wait for its end.
            try:
                await con._wait_for_cancellation()
            except Exception:
                if not con.is_closed():
                    raise
        if self._con is not con:
            return
        if con.is_closed():
            # The cancellation failed and closed the connection.
            con.terminate()
            self._connection_gone(con)
            return
        user_reset = self._pool._reset
        if user_reset is not None:
            await _reset_before_user_hook(con)
            await user_reset(con)
        else:
            remaining = None if deadline is None else max(deadline - loop.time(), 0.0)
            await con.reset(timeout=remaining)

    async def wait_until_released(self) -> None:
        """Returns once the connection is not checked out."""
        in_use = self._in_use
        if in_use is None:
            return
        if in_use is _IN_USE:
            in_use = self._in_use = self._pool._loop.create_future()
        # Shielded: a cancelled close() must not cancel the holder's own future.
        await asyncio.shield(in_use)

    # ---------------------------------------------------------------- closing

    async def close(self) -> None:
        """Closes the connection gracefully, if there is one."""
        con = self._con
        if con is not None:
            await self._close_connection(con, con.close())

    def terminate(self) -> None:
        """Closes the connection at once, if there is one."""
        con = self._con
        if con is not None:
            try:
                con.terminate()
            finally:
                self._connection_gone(con)

    async def _close_connection(self, con: _connection.Connection, closing: Any) -> None:
        try:
            await closing
        finally:
            self._connection_gone(con)

    def _connection_gone(self, con: _connection.Connection) -> None:
        """``con`` was closed, terminated or lost: free the holder if it is still ours."""
        if self._con is con:
            self._release_on_close()

    def _connection_lost(self, con: _connection.Connection) -> None:
        # The transport is gone (the server closed the session, or someone terminated
        # the raw connection): complete the connection's clean-up, then free the holder.
        if self._con is not con:
            return
        try:
            con.terminate()
        finally:
            self._connection_gone(con)

    def _release_on_close(self) -> None:
        """The connection is gone: the holder becomes free and empty, and the pool checks
        its floor.  Safe to call more than once."""
        self._cancel_inactive_timer()
        self._release()
        self._con = None
        self._pool._schedule_min_size_maintenance()

    def _release(self) -> None:
        """Checks the holder back in: wakes close(), invalidates the proxy, queues it."""
        in_use = self._in_use
        if in_use is None:
            return
        self._in_use = None
        if in_use is not _IN_USE and not in_use.done():
            in_use.set_result(None)
        proxy, self._proxy = self._proxy, None
        if proxy is not None:
            proxy._detach()
        self._pool._queue.put_nowait(self)

    # ------------------------------------------------------ inactivity timer

    def _arm_inactive_timer(self) -> None:
        """Starts the idle clock. A timer is armed only when none is: a connection in
        steady use re-arms it once per lifetime, not on every release."""
        loop = self._pool._loop
        self._idle_since = loop.time()
        if self._max_inactive_time and self._inactive_callback is None:
            self._inactive_callback = loop.call_later(
                self._max_inactive_time, self._deactivate_inactive_connection
            )

    def _cancel_inactive_timer(self) -> None:
        timer, self._inactive_callback = self._inactive_callback, None
        if timer is not None:
            timer.cancel()

    def _deactivate_inactive_connection(self) -> None:
        self._inactive_callback = None
        con = self._con
        if con is None or self._in_use is not None:
            return  # the next release arms it again
        idle = self._pool._loop.time() - self._idle_since
        if idle < self._max_inactive_time:
            # Used since the timer was armed: time the rest of this idle spell.
            self._inactive_callback = self._pool._loop.call_later(
                self._max_inactive_time - idle, self._deactivate_inactive_connection
            )
            return
        pool = self._pool
        if self.is_connected() and not pool.is_closing() and pool.get_size() <= pool._sizes.min:
            # Part of the floor: kept, and not timed again until it is next used.
            return
        con.terminate()
        self._connection_gone(con)


async def _close_quietly(con: _connection.Connection, timeout: Optional[float]) -> None:
    try:
        await con.close(timeout=timeout)
    except Exception:  # closing an expired connection is best effort
        pass


# ---------------------------------------------------------------------------- pool


def _pooled(name: str) -> Callable[..., Any]:
    """A Pool method running ``Connection.<name>`` on a pooled connection.

    Its arguments go to the connection's method as they came, except ``timeout``, which
    bounds the whole call (see :class:`_TimedUse`); the connection method gets what is
    left of it.  Name, docstring and signature are the connection method's.
    """

    async def shortcut(self: Pool, *args: Any, timeout: Optional[float] = None, **kwargs: Any):
        async with _TimedUse(self, timeout) as use:
            return await getattr(use.con, name)(*args, timeout=use.left(), **kwargs)

    functools.update_wrapper(shortcut, getattr(_connection.Connection, name))
    shortcut.__module__ = __name__
    shortcut.__qualname__ = f"Pool.{name}"
    shortcut.__doc__ = (
        f"Runs :meth:`Connection.{name}() <ferropg.Connection.{name}>` on a pooled "
        "connection; ``timeout`` covers acquiring and releasing it too."
    )
    return shortcut


#: The size arguments' rules, checked in this order: a test on the arguments that
#: fails them, and the error's text.
_SIZE_RULES: tuple[tuple[Callable[[Any], bool], str], ...] = (
    (lambda a: a.max <= 0, "max_size is expected to be greater than zero"),
    (lambda a: a.min < 0, "min_size is expected to be greater or equal to zero"),
    (lambda a: a.min > a.max, "min_size is greater than max_size"),
    (lambda a: a.init < 0, "init_size is expected to be greater or equal to zero"),
    (lambda a: a.init > a.max, "init_size is greater than max_size"),
    (lambda a: a.init < a.min, "init_size is smaller than min_size"),
    (lambda a: a.max_queries <= 0, "max_queries is expected to be greater than zero"),
    (
        lambda a: a.idle_lifetime < 0,
        "max_inactive_connection_lifetime is expected to be greater or equal to zero",
    ),
)


@dataclasses.dataclass(frozen=True)
class _Sizes:
    """A pool's size arguments, once they passed :data:`_SIZE_RULES`."""

    #: Connections opened when the pool is initialised.
    init: int
    #: The floor kept open, and the most the pool opens.
    min: int
    max: int
    #: Queries after which a released connection is replaced.
    max_queries: int
    #: Seconds after which an idle connection above the floor is closed (0: never).
    idle_lifetime: float

    @classmethod
    def checked(
        cls,
        init: Optional[int],
        min: int,
        max: int,
        max_queries: int,
        idle_lifetime: float,
    ) -> _Sizes:
        sizes = cls(min if init is None else init, min, max, max_queries, idle_lifetime)
        for broken, message in _SIZE_RULES:
            if broken(sizes):
                raise ValueError(message)
        return sizes


def _check_classes(connection_class: Any, record_class: Any) -> None:
    for given, base, expected in (
        (connection_class, _connection.Connection, "connection_class"),
        (record_class, Record, "record_class"),
    ):
        if not (isinstance(given, type) and issubclass(given, base)):
            raise TypeError(
                f"{expected} is expected to be a subclass of ferropg.{base.__name__}, got {given!r}"
            )


def _check_connect_result(con: Any, expected: type) -> None:
    """Refuses what a ``connect=`` callback returned unless it is an ``expected``."""
    if isinstance(con, expected):
        return
    got = type(con)
    # Builtins are named bare (``'int'``); everything else with its module.
    got_name = got.__name__ if got.__module__ == "builtins" else _dotted(got)
    raise exceptions.InterfaceError(
        "expected pool connect callback to return an instance of "
        f"'{_dotted(expected)}', got '{got_name}'"
    )


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}"


def _check_callable(name: str, value: Any) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{name} is expected to be a callable, got {value!r}")


class Pool:
    """Connections shared between tasks: each borrows one with :meth:`acquire` and gives
    it back with :meth:`release` (or at the end of ``async with``).

    Giving a connection back cleans its session (cursors closed, transaction rolled back,
    ``RESET ALL``...); its prepared statements and type codecs stay for the next user.
    Made by :func:`create_pool`.
    """

    def __init__(
        self,
        *connect_args: Any,
        init_size: Optional[int] = None,
        min_size: int = 10,
        max_size: int = 10,
        max_queries: int = 50000,
        max_inactive_connection_lifetime: float = 300.0,
        connect: Optional[Callable[..., Any]] = None,
        setup: Optional[Callable[..., Any]] = None,
        init: Optional[Callable[..., Any]] = None,
        reset: Optional[Callable[..., Any]] = None,
        reset_advisory_locks: bool = True,
        loop: Optional[asyncio.AbstractEventLoop] = None,
        connection_class: type = _connection.Connection,
        record_class: type = Record,
        **connect_kwargs: Any,
    ) -> None:
        self._sizes = _Sizes.checked(
            init_size, min_size, max_size, max_queries, max_inactive_connection_lifetime
        )
        _check_classes(connection_class, record_class)
        for name, value in (
            ("connect", connect),
            ("setup", setup),
            ("init", init),
            ("reset", reset),
        ):
            _check_callable(name, value)

        #: Bound when the pool is initialised, if not given.
        self._loop = loop
        # How new connections are opened; set_connect_args() replaces the arguments.
        self._connect = connect if connect is not None else _connection.connect
        self._connect_args: Any = connect_args
        self._connect_kwargs = connect_kwargs
        self._connection_class, self._record_class = connection_class, record_class
        # The user's callbacks: once per new connection, per acquire, per release.
        self._init, self._setup, self._reset = init, setup, reset
        self._reset_advisory_locks = bool(reset_advisory_locks)
        #: One of its connections met a transaction-mode pooler (see
        #: ``Connection._recover``): all of them bind statements unnamed.
        self._pooler_mode = False

        self._holders: list[PoolConnectionHolder] = []
        self._queue: Optional[_HolderQueue] = None
        self._initialized = False
        self._initializing = False
        self._closing = False
        self._closed = False
        #: Bumped by expire_connections(); connections of older generations are replaced.
        self._generation = 0
        self._maintenance_task: Optional[asyncio.Task] = None
        #: Tasks the pool started and must keep alive (shielded releases, expired closes).
        self._tasks: set[asyncio.Task] = set()

    # ---------------------------------------------------------- initialising

    async def _async__init__(self) -> Pool:
        if self._initialized:
            return self
        if self._initializing or self._closed:
            raise exceptions.InterfaceError(
                "pool is being initialized in another task"
                if self._initializing
                else "pool is closed"
            )
        self._initializing = True
        done = False
        try:
            await self._initialize()
            done = True
        finally:
            if not done:
                # No half-made pool: it is closed, and connections already opened go.
                self._closed = True
                self._terminate_holders()
            self._initializing = False
            self._initialized = True
            self._schedule_min_size_maintenance()
        return self

    async def _initialize(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self._queue = _HolderQueue(self._loop)
        for _ in range(self._sizes.max):
            holder = PoolConnectionHolder(
                self,
                max_queries=self._sizes.max_queries,
                setup=self._setup,
                max_inactive_time=self._sizes.idle_lifetime,
            )
            self._holders.append(holder)
            self._queue.put_nowait(holder)
        if not self._sizes.init:
            return
        # The queue hands out its newest holders first: connect those.  The first
        # connection is made alone, so that a wrong DSN fails fast with one error.
        first, *rest = self._holders[::-1][: self._sizes.init]
        await first.connect()
        if not rest:
            return
        tasks = [self._loop.create_task(holder.connect()) for holder in rest]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def __await__(self):
        return self._async__init__().__await__()

    async def __aenter__(self) -> Pool:
        await self._async__init__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def _check_init(self) -> None:
        if not self._initialized:
            if self._initializing:
                raise exceptions.InterfaceError(
                    "pool is being initialized, but not yet ready: "
                    "likely there is a race between creating a pool and using it"
                )
            raise exceptions.InterfaceError("pool is not initialized")
        if self._closed:
            raise exceptions.InterfaceError("pool is closed")

    async def _get_new_connection(self) -> _connection.Connection:
        opening = self._connect(
            *self._connect_args,
            **self._connect_kwargs,
            loop=self._loop,
            record_class=self._record_class,
            connection_class=self._connection_class,
        )
        con = await opening
        _check_connect_result(con, self._connection_class)
        con._pooled, con._reset_advisory_locks = True, self._reset_advisory_locks
        if self._pooler_mode:
            _to_pooler_mode(con)
        if self._init is not None:
            try:
                await self._init(con)
            except BaseException:
                # Half-initialised sessions are not kept.
                await con.close()
                raise
        return con

    def _enter_pooler_mode(self) -> None:
        """A connection met a transaction-mode pooler: the others sit behind the same
        one, and so will those opened later."""
        self._pooler_mode = True
        for holder in self._holders:
            if holder._con is not None:
                _to_pooler_mode(holder._con)

    # -------------------------------------------------------- the floor task

    def _schedule_min_size_maintenance(self) -> None:
        """Starts the floor task when the pool has fewer connections than ``min_size``."""
        if (
            not self._initialized
            or self._initializing
            or self.is_closing()
            or not self._sizes.min
            or self._maintenance_task is not None
        ):
            return
        if self.get_size() < self._sizes.min:
            assert self._loop is not None
            self._maintenance_task = self._loop.create_task(self._maintain_min_size())

    async def _maintain_min_size(self) -> None:
        """Reconnects idle holders until the pool is back at ``min_size``.

        A holder being reconnected is out of the queue, so acquirers cannot take it and
        the pool never exceeds ``max_size``.  Failures are logged and retried after 1 s,
        doubling up to 60 s; the task ends when the floor is met, when no idle holder
        lacks a connection (acquirers are connecting them), or when the pool closes.
        """
        assert self._queue is not None
        delay = _FLOOR_RETRY_FIRST
        try:
            while not self.is_closing() and self.get_size() < self._sizes.min:
                holder = self._queue.take_disconnected()
                if holder is None:
                    return  # acquirers are connecting the others themselves
                if await self._reconnect_idle(holder):
                    delay = _FLOOR_RETRY_FIRST
                    continue
                if self.is_closing():
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, _FLOOR_RETRY_MAX)
        finally:
            if self._maintenance_task is asyncio.current_task():
                self._maintenance_task = None

    async def _reconnect_idle(self, holder: PoolConnectionHolder) -> bool:
        """Gives an idle ``holder`` a new connection, then queues it again; False (and
        a warning) when connecting failed."""
        assert self._queue is not None
        try:
            # A connection that closed but was not cleaned up yet goes first.
            holder.terminate()
            await holder.connect()
        except Exception:
            if not self.is_closing():
                logger.warning(
                    "Failed to restore the pool connection floor; retrying", exc_info=True
                )
            return False
        finally:
            self._queue.put_nowait(holder)
        return True

    def _spawn(self, coro: Any) -> asyncio.Task:
        """Runs ``coro`` as a task the pool keeps a reference to until it ends."""
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self._tasks.discard(t)
            if not t.cancelled():
                t.exception()  # retrieved: a shielded release's caller may be gone

        task.add_done_callback(done)
        return task

    # --------------------------------------------------------------- sizes

    def is_closing(self) -> bool:
        """True once :meth:`close` or :meth:`terminate` has been called."""
        return self._closed or self._closing

    def get_size(self) -> int:
        """How many connections the pool has open (idle or in use)."""
        return sum(holder.is_connected() for holder in self._holders)

    def get_init_size(self) -> int:
        """How many connections the pool opens when it is initialised."""
        return self._sizes.init

    def get_min_size(self) -> int:
        """The floor: how many connections the pool keeps open when idle."""
        return self._sizes.min

    def get_max_size(self) -> int:
        """The most connections the pool opens."""
        return self._sizes.max

    def get_idle_size(self) -> int:
        """How many open connections are not checked out."""
        return sum(holder.is_connected() and holder.is_idle() for holder in self._holders)

    def set_connect_args(self, dsn: Optional[str] = None, **connect_kwargs: Any) -> None:
        """Sets the arguments for the pool's future connections (as for ``connect()``).

        Existing connections stay until they are replaced; :meth:`expire_connections`
        replaces them sooner.
        """
        self._connect_args = [dsn]
        self._connect_kwargs = connect_kwargs

    async def expire_connections(self) -> None:
        """Makes every open connection be replaced: idle ones on their next acquire,
        checked-out ones when they are released."""
        self._generation += 1

    # ------------------------------------------------------ acquire/release

    def acquire(self, *, timeout: Optional[float] = None) -> PoolAcquireContext:
        """Takes a connection from the pool, waiting up to ``timeout`` seconds.

        ``async with pool.acquire() as con:`` releases it at the end of the block;
        ``con = await pool.acquire()`` must be followed by ``await pool.release(con)``.
        """
        return PoolAcquireContext(self, timeout)

    async def _acquire(self, timeout: Optional[float]) -> PoolConnectionProxy:
        if self._closing:
            raise exceptions.InterfaceError("pool is closing")
        self._check_init()
        if timeout is None:
            holder = self._queue.take_ready()
            if holder is not None:
                con = holder._con
                assert con is not None
                holder._timeout = None
                return holder.check_out(con)
        return await _within(self._acquire_proxy(timeout), timeout)

    async def _acquire_proxy(self, timeout: Optional[float]) -> PoolConnectionProxy:
        assert self._queue is not None
        holder = await self._queue.get()
        try:
            proxy = await holder.acquire()
        except BaseException:
            self._queue.put_nowait(holder)
            self._schedule_min_size_maintenance()
            raise
        holder._timeout = timeout
        return proxy

    async def release(self, connection: Any, *, timeout: Optional[float] = None) -> None:
        """Gives a connection from :meth:`acquire` back, resetting its session.

        ``timeout`` (default: the one given to ``acquire()``) bounds the reset; a reset
        that fails or times out terminates the connection.  Releasing twice is harmless.
        Cancelling the caller does not stop the release.
        """
        if not isinstance(connection, PoolConnectionProxy) or connection._holder._pool is not self:
            raise exceptions.InterfaceError(
                f"Pool.release() received invalid connection: "
                f"{connection!r} is not a member of this pool"
            )
        await self._release(connection, timeout, None)

    async def _release(
        self, connection: PoolConnectionProxy, timeout: Optional[float], wait: Optional[float]
    ) -> None:
        """Releases ``connection`` with a reset bounded by ``timeout`` (default: the
        acquire's); the caller waits for it at most ``wait`` seconds (None: to its end),
        after which the release goes on without it."""
        con = connection._con
        if con is None:
            return  # already released
        self._check_init()
        _note_release(con)
        holder = connection._holder
        if timeout is None and wait is None:
            started = holder.release_started(con)
            if started is None:
                return
            if started is not NotImplemented:
                # Awaited through a future of its own: cancelling the caller cancels
                # only that future, never the reset's.
                await started
                return
        if timeout is None:
            timeout = holder._timeout
        task = self._spawn(holder.release(timeout, con))
        if wait is None:
            await asyncio.shield(task)
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), max(wait, 0.0))
        except TimeoutError:
            # The caller's time is up; the reset goes on, bounded by its own timeout, and
            # a connection it cannot clean is terminated.
            pass

    # -------------------------------------------------------------- closing

    async def close(self) -> None:
        """Closes the pool gracefully: waits until every connection is released, then
        closes them.  Any error (or cancellation) meanwhile terminates the pool instead.

        Use ``asyncio.wait_for()`` to bound the wait; a warning is logged when it takes
        more than 60 seconds.
        """
        if self._closed:
            return
        self._check_init()
        self._closing = True
        try:
            await self._stop_maintenance()
            await self._close_holders()
        except BaseException:
            self.terminate()
            raise
        finally:
            self._closed = True
            self._closing = False

    async def _close_holders(self) -> None:
        """Waits for every checked-out connection to come back, then closes them all;
        a warning is logged if that takes long."""
        assert self._loop is not None
        slow = self._loop.call_later(_LONG_CLOSE_WARNING_AFTER, self._warn_on_long_close)
        try:
            await asyncio.gather(*(holder.wait_until_released() for holder in self._holders))
            await asyncio.gather(*(holder.close() for holder in self._holders))
        finally:
            slow.cancel()

    async def _stop_maintenance(self) -> None:
        task, self._maintenance_task = self._maintenance_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _warn_on_long_close(self) -> None:
        logger.warning(
            "Pool.close() has been waiting for %d seconds: some connections acquired from "
            "the pool have not been released yet (asyncio.wait_for() can bound the wait).",
            _LONG_CLOSE_WARNING_AFTER,
        )

    def terminate(self) -> None:
        """Closes every connection of the pool at once, in use or not."""
        if self._closed:
            return
        self._check_init()
        self._closed = True
        task = self._maintenance_task
        if task is not None:
            task.cancel()  # the task clears the attribute itself as it ends
        self._terminate_holders()

    def _terminate_holders(self) -> None:
        for holder in self._holders:
            holder.terminate()

    # ------------------------------------------------------------- caches

    def _drop_statement_cache(self) -> None:
        """Empties the statement cache of every connection (a plan became invalid)."""
        for holder in self._holders:
            con = holder._con
            if con is not None:
                drop = getattr(con, "_drop_local_statement_cache", None)
                if drop is not None:
                    drop()
                else:
                    con._stmt_cache.clear()

    def _drop_type_cache(self) -> None:
        """Empties the type cache of every connection (a type changed)."""
        for holder in self._holders:
            con = holder._con
            if con is not None:
                drop = getattr(con, "_drop_local_type_cache", None)
                if drop is not None:
                    drop()

    # ----------------------------------------------------------- shortcuts
    # Each runs the Connection method of the same name on a connection of the pool's,
    # under one ``timeout`` for acquiring, the call and the release.

    execute = _pooled("execute")
    executemany = _pooled("executemany")
    fetch = _pooled("fetch")
    fetchval = _pooled("fetchval")
    fetchrow = _pooled("fetchrow")
    fetchmany = _pooled("fetchmany")
    copy_from_table = _pooled("copy_from_table")
    copy_from_query = _pooled("copy_from_query")
    copy_to_table = _pooled("copy_to_table")
    copy_records_to_table = _pooled("copy_records_to_table")


class _TimedUse:
    """One pooled call's checkout: ``timeout`` bounds the whole call, acquiring, the
    call itself (given :meth:`left`) and the release, which runs on in the background
    past the deadline, bounded by ``timeout`` again."""

    __slots__ = ("pool", "timeout", "deadline", "con")

    def __init__(self, pool: Pool, timeout: Optional[float]) -> None:
        self.pool = pool
        self.timeout = timeout
        self.deadline: Optional[float] = None
        self.con: Any = None

    def left(self) -> Optional[float]:
        """The seconds left of the call's timeout (None without one)."""
        if self.deadline is None:
            return None
        return max(self.deadline - self.pool._loop.time(), 0.0)

    async def __aenter__(self) -> _TimedUse:
        if self.timeout is not None:
            self.deadline = self.pool._loop.time() + self.timeout
        self.con = await self.pool._acquire(self.timeout)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        con, self.con = self.con, None
        await self.pool._release(con, None, self.left())


class PoolAcquireContext:
    """What :meth:`Pool.acquire` returns: ``await`` it, or use it with ``async with``."""

    __slots__ = ("timeout", "connection", "done", "pool")

    def __init__(self, pool: Pool, timeout: Optional[float]) -> None:
        self.pool = pool
        self.timeout = timeout
        self.connection: Optional[PoolConnectionProxy] = None
        self.done = False

    async def __aenter__(self) -> PoolConnectionProxy:
        if self.connection is not None or self.done:
            raise exceptions.InterfaceError("a connection is already acquired")
        self.connection = await self.pool._acquire(self.timeout)
        return self.connection

    async def __aexit__(self, *exc: Any) -> None:
        self.done = True
        con, self.connection = self.connection, None
        await self.pool.release(con)

    def __await__(self):
        self.done = True
        return self.pool._acquire(self.timeout).__await__()


def create_pool(
    dsn: Optional[str] = None,
    *,
    init_size: Optional[int] = None,
    min_size: int = 10,
    max_size: int = 10,
    max_queries: int = 50000,
    max_inactive_connection_lifetime: float = 300.0,
    connect: Optional[Callable[..., Any]] = None,
    setup: Optional[Callable[..., Any]] = None,
    init: Optional[Callable[..., Any]] = None,
    reset: Optional[Callable[..., Any]] = None,
    reset_advisory_locks: bool = True,
    loop: Optional[asyncio.AbstractEventLoop] = None,
    connection_class: type = _connection.Connection,
    record_class: type = Record,
    **connect_kwargs: Any,
) -> Pool:
    """Creates a connection pool; ``await`` it, or use ``async with``, before use.

    * ``dsn`` and ``connect_kwargs``: as for :func:`ferropg.connect`.
    * ``init_size``: connections opened up front (default ``min_size``; between
      ``min_size`` and ``max_size``).
    * ``min_size``: the floor kept open while idle; lost connections are replaced in the
      background.  ``0`` lets the pool drain.
    * ``max_size``: the most connections the pool opens.
    * ``max_queries``: a connection that ran this many queries is replaced on release.
    * ``max_inactive_connection_lifetime``: seconds after which an idle connection above
      the floor is closed (``0``: never).
    * ``connect(*args, **kwargs)``: replaces :func:`ferropg.connect` for new connections;
      it must return an instance of ``connection_class``.
    * ``init(con)``: runs once per new connection (e.g. to register type codecs).
    * ``setup(proxy)``: runs on every acquire, before the connection is handed out.
    * ``reset(con)``: replaces :meth:`Connection.reset() <ferropg.Connection.reset>` on
      release (listeners are still removed and a transaction still rolled back first).
    * ``reset_advisory_locks``: ``False`` skips ``pg_advisory_unlock_all()`` on
      release, for applications that take no session-level advisory locks (or release
      their own). A release then needs no round trip unless a transaction was left open
      or a LISTEN ran: the settings part of the reset goes ahead of the next user's
      first request. (ferropg's own; asyncpg has no such option.)
    * ``connection_class``, ``record_class``: as for :func:`ferropg.connect`.

    Prepared statements, cursors and transactions made on an acquired connection stop
    working when it is released; listeners still registered then are removed with an
    :class:`~ferropg.exceptions.InterfaceWarning`.
    """
    # Every parameter above is Pool's too, with the same default: pass them all on.
    options = dict(locals())
    return Pool(options.pop("dsn"), **options.pop("connect_kwargs"), **options)

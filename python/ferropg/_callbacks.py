"""Listeners, log listeners, termination listeners and query loggers of a Connection.

:class:`CallbacksMixin` holds asyncpg's public callback API and the registries behind it
under asyncpg's attribute names (``_listeners``, ``_log_listeners``,
``_termination_listeners``, ``_query_loggers``), which some code and tests inspect.
Every registry maps a callback to whether it is an ``async def`` function; dicts keep
the order callbacks were added in, so they are also called in that order.

A callback that raises never breaks the connection: the error goes to the event loop's
exception handler.  Coroutine callbacks run as tasks the mixin keeps a reference to
until they finish.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from . import exceptions, utils

__all__ = ("CallbacksMixin", "LoggedQuery")


LoggedQuery = collections.namedtuple(
    "LoggedQuery",
    ["query", "args", "timeout", "elapsed", "exception", "conn_addr", "conn_params"],
)
LoggedQuery.__doc__ = """Log record of an executed query, as passed to query loggers.

``elapsed`` is in seconds; ``exception`` is what the query raised, or None."""


def _is_async(callback: Any) -> bool:
    """Whether ``callback`` is an ``async def`` function; InterfaceError if not callable."""
    if inspect.iscoroutinefunction(callback):
        return True
    if callable(callback):
        return False
    raise exceptions.InterfaceError(
        f"expected a callable or an `async def` function, got {callback!r}"
    )


class _NoQueryLog:
    """What ``_log_query`` returns when no logger is registered: does nothing, shared."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, extype: Any, ex: Any, tb: Any) -> None:
        return None


_NO_QUERY_LOG = _NoQueryLog()


class _QueryLog:
    """Times one query and hands a :data:`LoggedQuery` to every query logger."""

    __slots__ = ("_con", "_query", "_args", "_timeout", "_start")

    def __init__(self, con: CallbacksMixin, query: str, args: Any, timeout: Any) -> None:
        self._con = con
        self._query = query
        self._args = args
        self._timeout = timeout
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.monotonic()

    def __exit__(self, extype: Any, ex: Any, tb: Any) -> None:
        elapsed = time.monotonic() - self._start
        con = self._con
        record = LoggedQuery(
            query=self._query,
            args=self._args,
            timeout=self._timeout,
            elapsed=elapsed,
            exception=ex,
            conn_addr=con._addr,
            conn_params=con._params,
        )
        for cb, is_async in tuple(con._query_loggers.items()):
            con._schedule_callback(cb, is_async, (record,), "query logger")
        # Falls through (None) so the query's exception, if any, propagates.


class CallbacksMixin:
    """The callback registries of a Connection and the public methods that fill them.

    The host class provides ``_loop``, ``_protocol``, ``_addr``, ``_params`` and
    ``is_closed()``, and calls :meth:`_init_callbacks` from its ``__init__``.
    """

    _loop: asyncio.AbstractEventLoop
    _protocol: Any
    _addr: Any
    _params: Any

    # ------------------------------------------------------------------ setup

    def _init_callbacks(self) -> None:
        """Creates the registries and connects the protocol's notice/notification hooks."""
        self._listeners: dict[str, dict[Callable[..., Any], bool]] = {}
        self._log_listeners: dict[Callable[..., Any], bool] = {}
        self._termination_listeners: dict[Callable[..., Any], bool] = {}
        self._query_loggers: dict[Callable[..., Any], bool] = {}
        self._callback_tasks: set[asyncio.Task] = set()
        self._callbacks_closed = False

        # The transport keeps the protocol alive while the socket is open; weak handles
        # keep the protocol from keeping an unreferenced connection alive in turn.
        ref = weakref.ref(self)

        def on_notice(message: Any) -> None:
            con = ref()
            if con is not None:
                con._process_log_message(message)

        def on_notification(pid: int, channel: str, payload: str) -> None:
            con = ref()
            if con is not None:
                con._process_notification(pid, channel, payload)

        def on_lost(_fut: Any = None) -> None:
            con = ref()
            if con is not None:
                con._call_termination_listeners()

        self._notice_hook = on_notice
        self._notification_hook = on_notification
        self._sync_protocol_callbacks()

        # Termination listeners must be scheduled before the operations the loss fails
        # wake up (asyncpg's order), so the protocol should call this hook at the start
        # of connection_lost.  The future it resolves there is a fallback that comes
        # later; the listeners run once either way.
        self._protocol._connection_lost_hook = on_lost
        closed_waiter = getattr(self._protocol, "_closed_waiter", None)
        if closed_waiter is not None:
            closed_waiter().add_done_callback(on_lost)

    def _sync_protocol_callbacks(self) -> None:
        # Without log listeners the protocol need not build a message object per notice.
        if self._callbacks_closed:
            self._protocol.set_callbacks(notice=None, notification=None)
            return
        self._protocol.set_callbacks(
            notice=self._notice_hook if self._log_listeners else None,
            notification=self._notification_hook,
        )

    # ---------------------------------------------------------- notifications

    async def add_listener(self, channel: str, callback: Callable[..., Any]) -> None:
        """Listens for notifications on ``channel`` (``LISTEN``, once per channel).

        ``callback(connection, pid, channel, payload)`` is called for each notification;
        it may be an ``async def`` function, which then runs as a task.
        """
        if self.is_closed():
            raise exceptions.InterfaceError("connection is closed")
        if self._protocol.pooler_mode:
            raise exceptions.InterfaceError(
                "cannot LISTEN through a transaction-mode pooler (such as pgbouncer): "
                "notifications reach whichever client the pooler links to the server "
                "session at that moment. Connect to the server directly to listen."
            )
        is_async = _is_async(callback)
        if channel not in self._listeners:
            await self.execute(f"LISTEN {utils._quote_ident(channel)}")
        # setdefault: another add_listener may have registered the channel meanwhile.
        self._listeners.setdefault(channel, {})[callback] = is_async

    async def remove_listener(self, channel: str, callback: Callable[..., Any]) -> None:
        """Removes a callback added by :meth:`add_listener`; the last one ``UNLISTEN``s."""
        if self.is_closed():
            return
        callbacks = self._listeners.get(channel)
        if callbacks is None:
            return
        _is_async(callback)
        if callback not in callbacks:
            return
        del callbacks[callback]
        if not callbacks:
            del self._listeners[channel]
            await self.execute(f"UNLISTEN {utils._quote_ident(channel)}")

    def _process_notification(self, pid: int, channel: str, payload: str) -> None:
        callbacks = self._listeners.get(channel)
        if not callbacks:
            return
        con = self._unwrap()
        for cb, is_async in tuple(callbacks.items()):
            self._run_callback(cb, is_async, (con, pid, channel, payload), "listener")

    # ---------------------------------------------------------- log messages

    def add_log_listener(self, callback: Callable[..., Any]) -> None:
        """Receives the server's log messages (NOTICE, WARNING, INFO, DEBUG, LOG).

        ``callback(connection, message)`` gets a
        :class:`~ferropg.exceptions.PostgresLogMessage` (a subclass such as
        :class:`~ferropg.exceptions.PostgresWarning` when the SQLSTATE has one);
        it may be an ``async def`` function.
        """
        if self.is_closed():
            raise exceptions.InterfaceError("connection is closed")
        self._log_listeners[callback] = _is_async(callback)
        if len(self._log_listeners) == 1:
            self._sync_protocol_callbacks()

    def remove_log_listener(self, callback: Callable[..., Any]) -> None:
        """Removes a callback added by :meth:`add_log_listener`."""
        _is_async(callback)
        if self._log_listeners.pop(callback, None) is not None and not self._log_listeners:
            self._sync_protocol_callbacks()

    def _process_log_message(self, message: Any) -> None:
        if not self._log_listeners:
            return
        con = self._unwrap()
        for cb, is_async in tuple(self._log_listeners.items()):
            self._run_callback(cb, is_async, (con, message), "log listener")

    # ----------------------------------------------------------- termination

    def add_termination_listener(self, callback: Callable[..., Any]) -> None:
        """``callback(connection)`` is called once when the connection is closed,
        terminated or lost; it may be an ``async def`` function."""
        self._termination_listeners[callback] = _is_async(callback)

    def remove_termination_listener(self, callback: Callable[..., Any]) -> None:
        """Removes a callback added by :meth:`add_termination_listener`."""
        _is_async(callback)
        self._termination_listeners.pop(callback, None)

    def _call_termination_listeners(self) -> None:
        """Schedules the termination listeners and drops every registry.

        The connection is gone: called from ``close()``, ``terminate()`` and on connection
        loss, possibly several of them for one connection, and acts only the first time.
        """
        if self._callbacks_closed:
            return
        self._callbacks_closed = True
        listeners = tuple(self._termination_listeners.items())
        self._termination_listeners.clear()
        self._listeners.clear()
        self._log_listeners.clear()
        self._query_loggers.clear()
        with contextlib.suppress(Exception):
            # The protocol's references back to us are no longer needed.
            self._sync_protocol_callbacks()
        con = self._unwrap()
        for cb, is_async in listeners:
            self._schedule_callback(cb, is_async, (con,), "termination listener")

    # ---------------------------------------------------------- query logging

    def add_query_logger(self, callback: Callable[..., Any]) -> None:
        """``callback(record)`` is called after each query with a :data:`LoggedQuery`
        (query, args, timeout, elapsed, exception, conn_addr, conn_params); it may be
        an ``async def`` function."""
        self._query_loggers[callback] = _is_async(callback)

    def remove_query_logger(self, callback: Callable[..., Any]) -> None:
        """Removes a callback added by :meth:`add_query_logger`."""
        _is_async(callback)
        self._query_loggers.pop(callback, None)

    @contextlib.contextmanager
    def query_logger(self, callback: Callable[..., Any]) -> Iterator[None]:
        """``with con.query_logger(cb): ...`` logs the block's queries to ``cb``."""
        self.add_query_logger(callback)
        try:
            yield
        finally:
            self.remove_query_logger(callback)

    def _log_query(self, query: str, args: Any, timeout: Any) -> Any:
        """A context manager around one query that reports it to the query loggers.

        On the hot path: with no logger it is a shared object whose enter/exit do nothing.
        """
        if not self._query_loggers:
            return _NO_QUERY_LOG
        return _QueryLog(self, query, args, timeout)

    # ------------------------------------------------------------------ pool

    def _clear_listeners(self) -> None:
        """Drops notification and log listeners, as a reset does (no UNLISTEN sent:
        the reset query's ``UNLISTEN *`` covers the server side)."""
        self._listeners.clear()
        if self._log_listeners:
            self._log_listeners.clear()
            self._sync_protocol_callbacks()

    def _warn_dangling_listeners(self, stacklevel: int = 1) -> None:
        """Warns (InterfaceWarning) about listeners left on a connection a pool takes back."""
        if not (self._listeners or self._log_listeners):
            return  # every release passes here
        notification = sum(len(cbs) for cbs in self._listeners.values())
        for count, kind in ((notification, "notification"), (len(self._log_listeners), "log")):
            if count:
                warnings.warn(
                    exceptions.InterfaceWarning(
                        f"{self!r} is being released to the pool but has {count} active "
                        f"{kind} listener{'s' if count > 1 else ''}"
                    ),
                    stacklevel=stacklevel + 1,
                )

    # -------------------------------------------------------------- plumbing

    def _unwrap(self) -> Any:
        # Pooled connections show callbacks the proxy the user holds, not the raw one.
        proxy = getattr(self, "_proxy", None)
        return self if proxy is None else proxy

    def _run_callback(self, cb: Callable[..., Any], is_async: bool, args: tuple, kind: str) -> None:
        """Calls ``cb`` now (from a loop callback, never from inside data_received).

        Called inline rather than rescheduled so that a listener sees a message before
        the task awaiting the query that caused it resumes, as with asyncpg.
        """
        if is_async:
            self._start_task(cb, args, kind)
            return
        try:
            result = cb(*args)
        except Exception as e:
            self._report_callback_error(cb, kind, e)
            return
        if inspect.isawaitable(result):
            # A callable object whose __call__ is async, or a partial of one.
            self._watch_task(cb, kind, asyncio.ensure_future(result, loop=self._loop))

    def _schedule_callback(
        self, cb: Callable[..., Any], is_async: bool, args: tuple, kind: str
    ) -> None:
        """Calls ``cb`` on a later loop iteration (callers are in the middle of user code)."""
        if self._loop.is_closed():
            return
        if is_async:
            self._start_task(cb, args, kind)
        else:
            self._loop.call_soon(self._run_callback, cb, False, args, kind)

    def _start_task(self, cb: Callable[..., Any], args: tuple, kind: str) -> None:
        try:
            coro = cb(*args)
        except Exception as e:
            self._report_callback_error(cb, kind, e)
            return
        self._watch_task(cb, kind, self._loop.create_task(coro))

    def _watch_task(self, cb: Callable[..., Any], kind: str, task: asyncio.Future) -> None:
        # The loop holds tasks weakly: keep each until done, then surface its error.
        self._callback_tasks.add(task)

        def done(t: asyncio.Future) -> None:
            self._callback_tasks.discard(t)
            if not t.cancelled():
                e = t.exception()
                if e is not None:
                    self._report_callback_error(cb, kind, e)

        task.add_done_callback(done)

    def _report_callback_error(self, cb: Any, kind: str, e: BaseException) -> None:
        self._loop.call_exception_handler(
            {
                "message": f"Unhandled exception in {kind} callback {cb!r}",
                "exception": e,
                "connection": self,
            }
        )

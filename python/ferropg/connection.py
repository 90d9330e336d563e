"""``connect()`` and ``Connection``: the asyncpg-shaped connection API."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import traceback
import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

from . import _native, connect_utils, cursor, exceptions, prepared_stmt, serverversion
from ._asyncpg_private import ConnectionHooks
from ._builtin_types import BUILTIN_TYPES
from ._callbacks import CallbacksMixin, LoggedQuery  # noqa: F401 - asyncpg exports it here
from ._codecs import CodecsMixin
from ._copy import CopyMixin
from .protocol import Protocol, Record
from .protocol._oid_map import BUILTIN_TYPE_OID_MAP
from .transaction import Transaction

__all__ = ("Connection", "connect")

#: Counter behind unique statement, portal and savepoint names.  asyncpg's tests read it
#: as ``connection._uid``, so it stays a global of this module (see _asyncpg_private).
_uid = 0

#: How often, and how far apart, a cancel request is repeated while its query runs on.
_CANCEL_RETRIES = 5
_CANCEL_RETRY_AFTER = 0.5
#: How long one cancel request may take to be answered. Past it, whether the server
#: will still act on it is unknown, so the connection is closed rather than used.
_CANCEL_LIMIT = 10.0

#: How much encoded executemany() input goes out per write, as asyncpg's four 32 KiB
#: buffers: large enough to keep the server busy, small enough to stop early on errors.
_MANY_BATCH_BYTES = 4 * 32 * 1024


class DataCodec(NamedTuple):
    """What :meth:`ConnectionSettings.get_data_codec` tells of a type's codec."""

    oid: int
    name: str
    schema: str
    kind: str
    #: 'binary' or 'text': the wire format its values travel in.
    format: str


class ConnectionSettings:
    """The server's run-time parameters, readable as attributes (``client_encoding``...)."""

    __slots__ = ("_settings", "_protocol")

    def __init__(self, settings: dict[str, str], protocol: Any = None) -> None:
        self._settings = settings
        self._protocol = protocol

    def __getattr__(self, name: str) -> str:
        try:
            return self._settings[name]
        except KeyError:
            raise AttributeError(name) from None

    def get_data_codec(
        self, oid: int, format: Any = None, ignore_custom_codec: bool = False
    ) -> DataCodec | None:
        """The codec the connection uses for type ``oid``, or None if it has none (a type
        never seen, so not introspected yet)."""
        if self._protocol is None:
            return None
        fmt = self._protocol.codec_format(oid, ignore_custom_codec)
        if fmt is None:
            return None
        info = self._protocol.type_info(oid)
        if info is not None:
            schema, name, kind, _elem = info
        else:
            name, kind = BUILTIN_TYPES.get(oid, (BUILTIN_TYPE_OID_MAP.get(oid, ""), "scalar"))
            schema = "pg_catalog"
        return DataCodec(oid, name, schema, kind, "binary" if fmt else "text")

    def __repr__(self) -> str:
        return f"<ferropg.ConnectionSettings {self._settings!r}>"


@dataclass(frozen=True)
class ConnectionOptions:
    """The per-connection options of ``connect()``."""

    statement_cache_size: int = 100
    max_cached_statement_lifetime: float = 300
    max_cacheable_statement_size: int = 1024 * 15
    command_timeout: float | None = None


@dataclass(frozen=True)
class ServerCapabilities:
    """What the server supports (asyncpg detects PostgreSQL forks; vanilla has it all)."""

    advisory_locks: bool = True
    notifications: bool = True
    plpgsql: bool = True
    sql_reset: bool = True
    sql_close_all: bool = True
    sql_copy_from_where: bool = True
    jit: bool = True


#: What a failed statement run may recover from (see ``Connection._recover``).
_RECOVERABLE = (exceptions.InvalidCachedStatementError, *prepared_stmt.STATEMENT_LOST)


def _command_timeout_seconds(value: Any) -> float | None:
    """``connect(command_timeout=)`` as a float: None, or a number above zero (a bool is
    not taken for one)."""
    if value is None:
        return None
    seconds: Any = value
    if not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            seconds = float(value)
    if not isinstance(seconds, float) or seconds <= 0:
        # The refused value is shown as converted when it could be.
        raise ValueError(
            f"invalid command_timeout value: expected greater than 0 float (got {seconds!r})"
        )
    return seconds


def _check_record_class(record_class: Any) -> None:
    if record_class is Record:
        return
    if not (isinstance(record_class, type) and issubclass(record_class, Record)):
        raise exceptions.InterfaceError(
            # asyncpg's wording, which callers match on; ferropg.Record is asyncpg.Record here.
            "record_class is expected to be a subclass of asyncpg.Record (ferropg.Record), "
            f"got {record_class!r}"
        )
    if record_class.__new__ is not Record.__new__ or record_class.__init__ is not Record.__init__:
        raise exceptions.InterfaceError("record_class must not redefine __new__ or __init__")


class _ConnectionProxy:
    """Base of the pool's connection proxies, so that they pass ``isinstance(x, Connection)``."""

    __slots__ = ()


class ConnectionMeta(type):
    """Makes a pool proxy count as an instance of Connection (and of its own class)."""

    def __instancecheck__(cls, instance: Any) -> bool:
        if type.__instancecheck__(cls, instance):
            return True
        if isinstance(instance, _ConnectionProxy):
            con = instance._con
            return cls is Connection or (con is not None and type.__instancecheck__(cls, con))
        return False


class Connection(CallbacksMixin, CopyMixin, CodecsMixin, ConnectionHooks, metaclass=ConnectionMeta):
    """A connection to a PostgreSQL server. Use :func:`connect` to make one."""

    def __init__(
        self,
        protocol: Protocol,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        addr: Any,
        params: connect_utils.ConnectParams,
        config: ConnectionOptions,
    ) -> None:
        # What the connection runs over, and on which loop.
        self._protocol, self._transport, self._loop = protocol, transport, loop
        # What it was opened with: the address, the resolved parameters, the options.
        self._addr, self._params, self._config = addr, params, config
        self._server_version = serverversion.split_server_version_string(
            protocol.get_settings().get("server_version", "0")
        )
        self._server_caps = ServerCapabilities()
        self._stmt_cache_enabled = config.statement_cache_size > 0
        self._cancellations: set[asyncio.Task] = set()
        self._top_xact: Transaction | None = None
        self._aborted = False
        self._reset_query: str | None = None
        #: Set by the pool that owns the connection (the async or the blocking one):
        #: its reset may then leave its settings part for the next request, and
        #: ``create_pool(reset_advisory_locks=False)`` opts out of unlocking.
        self._pooled = False
        self._reset_advisory_locks = True
        #: This connection already knows its protocol went to pooler mode.
        self._behind_pooler = False
        # Set by a pool that owns the connection.
        self._proxy = None
        self._pool_holder = None
        self._pool_release_ctr = 0
        # Where connect() was called, in asyncio debug mode: the unclosed-connection
        # warning shows it. connect() sets it.
        self._source_traceback: traceback.StackSummary | None = None
        self._init_callbacks()
        self._probe_for_pooler()

    def _probe_for_pooler(self) -> None:
        """Asks the server, ahead of the first request and in the same write, whether
        it runs in the process the startup's backend key names. A pooler in between
        (pgbouncer) answers startup with a key of its own: the connection then binds
        statements unnamed inside transaction blocks, where a statement missing from
        the server session the pooler chose would abort the transaction."""
        protocol = self._protocol
        probe = _native.pooler_probe(int(protocol.get_server_pid()))

        def answered(fut: asyncio.Future) -> None:
            if fut.cancelled() or fut.exception() is not None:
                return
            if _native.probe_says_pooler(fut.result()):
                protocol.suspect_pooler()

        try:
            protocol.defer_script(probe).add_done_callback(answered)
        except exceptions.InterfaceError:
            pass  # closed already

    # ------------------------------------------------------------------ state

    def is_closed(self) -> bool:
        """True once the connection is closed or lost."""
        return self._protocol.is_closed()

    def is_in_transaction(self) -> bool:
        """True inside a transaction block."""
        return self._protocol.is_in_transaction()

    def get_server_pid(self) -> int:
        """The PID of the server process serving this connection."""
        return self._protocol.get_server_pid()

    def get_server_version(self):
        """The server version as a :class:`ferropg.types.ServerVersion`."""
        return self._server_version

    def get_settings(self) -> ConnectionSettings:
        """The server's run-time parameters as last reported."""
        return ConnectionSettings(self._protocol.get_settings(), self._protocol)

    def get_reset_query(self) -> str:
        """The SQL that :meth:`reset` runs, at most, to return the session to a clean
        state (a reset runs only the parts the session may have dirtied)."""
        if self._reset_query is None:
            policy = self._reset_policy()
            self._reset_query = self._protocol.reset_plan(whole=True, **policy)[0]
        return self._reset_query

    def _reset_policy(self) -> dict[str, bool]:
        """Which parts of a reset may run: what the server supports, less the opt-outs
        of the pool that owns the connection."""
        caps = self._server_caps
        if self._protocol.pooler_mode or self._protocol.pooler_suspected:
            # Outside a transaction the next statement may reach any server session
            # of the pooler: unlocking, unlistening or resetting there would undo
            # another client's session. Only an open transaction is ours to end.
            return dict.fromkeys(
                ("advisory_locks", "close_cursors", "unlisten", "reset_settings", "temp_tables"),
                False,
            )
        return {
            "advisory_locks": caps.advisory_locks and self._reset_advisory_locks,
            "close_cursors": caps.sql_close_all,
            "unlisten": caps.notifications and caps.plpgsql,
            "reset_settings": caps.sql_reset,
            # Temporary tables go too: the next user of a pooled connection must not
            # see (or collide with) the last one's. asyncpg keeps them.
            "temp_tables": caps.sql_reset,
        }

    def _get_unique_id(self, prefix: str) -> str:
        global _uid
        _uid += 1
        # Unique among every client of the server: behind a pooler, clients share
        # server sessions and the statements prepared in them.
        return _native.unique_name(prefix, _uid)

    def _check_open(self) -> None:
        if self._protocol.is_closed():
            raise exceptions.InterfaceError("connection is closed")

    async def _ready_for_operation(self, timeout: float | None = None) -> None:
        """Refuses a second concurrent operation; waits out an abandoned one.

        Waiting counts against the caller's ``timeout``: a connection that cannot be
        cleaned up within the budget of the next call is closed (as asyncpg does), not
        waited on. A caller cancelled meanwhile (``wait_for``) leaves it as it is: the
        cancellation goes on and the connection stays usable.
        """
        self._check_open()
        # The connection's own background work (cancellations, the roll-back of an
        # abandoned BEGIN) awaits the server too: only a caller's operation is "busy".
        if not self._cancellations:
            self._check_not_busy()
        if timeout is not None and timeout <= 0:
            # Nothing is sent: there is no time to run anything.
            raise TimeoutError
        if self._cancellations or self._protocol.has_pending():
            try:
                if timeout is None:
                    await self._wait_for_cancellation()
                else:
                    await asyncio.wait_for(self._wait_for_cancellation(), max(timeout, 0))
            except TimeoutError:
                self._abort()
                raise
            self._check_open()
            self._check_not_busy()

    def _check_not_busy(self) -> None:
        if self._protocol.is_busy():
            raise exceptions.InterfaceError(
                "cannot perform operation: another operation is in progress"
            )

    # -------------------------------------------------------------- timeouts

    def _timeout(self, timeout: float | None) -> float | None:
        if timeout is None:
            return self._config.command_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise ValueError(
                f"invalid timeout value: expected non-negative float (got {timeout!r})"
            )
        return timeout

    async def _wait(self, fut: asyncio.Future, timeout: float | None) -> Any:
        """Awaits a protocol future; on timeout or cancellation, cancels the query."""
        try:
            if timeout is None:
                return await fut
            if timeout <= 0:
                fut.cancel()
                raise TimeoutError
            return await asyncio.wait_for(fut, timeout)
        except (TimeoutError, asyncio.CancelledError):
            self._abandon(fut)
            raise
        except exceptions.OutdatedSchemaCacheError:
            self._schema_changed()
            raise

    def _abandon(self, fut: asyncio.Future) -> None:
        """The caller stopped waiting for ``fut``: stop the query it stands for."""
        if not fut.done():
            fut.cancel()
        if self._protocol.is_busy() or self._protocol._is_cancelling():
            self._cancel_current_command()

    def _cancel_current_command(self, waiter: asyncio.Future | None = None) -> None:
        """Asks the server, over a side connection, to cancel what this one is running;
        ``waiter`` (if given) is resolved when the attempt is over."""
        if self._protocol.is_closed() or (self._cancellations and waiter is None):
            # One attempt at a time: the one under way covers this query too.
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            return
        task = self._loop.create_task(self._cancel_attempt(waiter))
        self._cancellations.add(task)
        task.add_done_callback(self._cancellations.discard)

    async def _cancel_attempt(self, waiter: asyncio.Future | None) -> None:
        """Sends CancelRequest and waits for the cancelled query's end, within the
        command timeout. If that fails, the session's state is unknown: close it."""
        pid, secret = self._protocol.get_cancel_key()

        async def attempt() -> None:
            # The server drops a cancel that arrives while it reads the next pipelined
            # message rather than running one, so ask again while the query runs on.
            for _ in range(_CANCEL_RETRIES):
                await asyncio.wait_for(
                    connect_utils._cancel(
                        loop=self._loop,
                        addr=self._addr,
                        params=self._cancel_params(),
                        backend_pid=pid,
                        backend_secret=secret,
                    ),
                    _CANCEL_LIMIT,
                )
                idle = self._protocol.wait_idle()
                try:
                    await asyncio.wait_for(asyncio.shield(idle), _CANCEL_RETRY_AFTER)
                    return
                except TimeoutError:
                    if self._protocol.is_closed():
                        return
            await self._protocol.wait_idle()

        try:
            timeout = self._config.command_timeout
            if timeout is None:
                await attempt()
            else:
                await asyncio.wait_for(attempt(), timeout)
        except asyncio.CancelledError:
            raise
        except Exception:
            self._abort()
        finally:
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _end_abandoned_begin(self) -> None:
        """A BEGIN whose caller stopped waiting may still run: once it has, roll back
        the transaction it opened, before any other operation (they wait for the tasks
        in ``_cancellations``)."""
        if self._protocol.is_closed():
            return

        async def end() -> None:
            await self._wait_for_cancellation(but=asyncio.current_task())
            if self._protocol.is_closed() or not self._protocol.is_in_transaction():
                return
            if self._top_xact is None:
                try:
                    await self._protocol.query_script("ROLLBACK;")
                except Exception:
                    # A connection that cannot roll back cannot be trusted with the next
                    # operation.
                    self._abort()

        task = self._loop.create_task(end())
        self._cancellations.add(task)
        task.add_done_callback(self._cancellations.discard)

    async def _wait_for_cancellation(self, but: asyncio.Task | None = None) -> None:
        """Waits for the background work in ``_cancellations`` (``but`` the task that
        asks), then for every abandoned operation's end."""
        # asyncio.wait, not gather: a caller that gives up waiting must not cancel the
        # attempts, whose CancelRequest may still be on its way to the server.
        while pending := [t for t in self._cancellations if t is not but and not t.done()]:
            await asyncio.wait(pending)
        await self._protocol._drain_cancels()

    def _abort(self) -> None:
        """Drops the transport at once, without Terminate."""
        self._protocol.abort()

    # ---------------------------------------------------------------- queries

    async def _get_statement(
        self,
        query: str,
        timeout: float | None,
        *,
        named: str | bool = False,
        use_cache: bool = True,
        ignore_custom_codec: bool = False,
        record_class: Any = None,
    ):
        """A prepared statement for ``query``: from the cache, or prepared now."""
        if record_class is None:
            record_class = self._protocol.get_record_class()
        else:
            _check_record_class(record_class)
        if use_cache:
            stmt = self._protocol.cache_get(query, record_class, ignore_custom_codec)
            if stmt is not None:
                return stmt
            use_cache = _native.cacheable(
                query, self._stmt_cache_enabled, self._config.max_cacheable_statement_size
            )
        if self._protocol.pooler_mode:
            # Behind a pooler a name would live in one server session among many:
            # the statement is described unnamed and parsed again wherever it runs.
            name = ""
        elif isinstance(named, str):
            name = named
        else:
            # A statement kept for later needs a name of its own; "" is the unnamed one.
            name = self._get_unique_id("stmt") if use_cache or named else ""
        stmt = await self._wait(
            self._protocol.prepare(query, name, record_class, ignore_custom_codec), timeout
        )
        if stmt.missing_types:
            stmt = await self._resolve_types(stmt, timeout)
        if use_cache:
            self._protocol.cache_put(stmt, record_class, ignore_custom_codec)
        return stmt

    async def _execute(
        self,
        query: str,
        args: tuple,
        limit: int,
        timeout: float | None,
        *,
        want_rows: bool,
        record_class: Any = None,
    ) -> Any:
        """Runs one query through the statement cache; every query method ends up here."""
        timeout = self._timeout(timeout)
        await self._ready_for_operation(timeout)
        if self._query_loggers:
            with self._log_query(query, args, timeout):
                return await self._execute_retrying(
                    query, args, limit, timeout, want_rows, record_class
                )
        return await self._execute_retrying(query, args, limit, timeout, want_rows, record_class)

    async def _execute_retrying(self, query, args, limit, timeout, want_rows, record_class):
        if not args and not want_rows:
            return await self._wait(self._protocol.query_script(query), timeout)
        if record_class is not None:
            _check_record_class(record_class)
        for attempt in (0, 1):
            try:
                fut = self._protocol.execute(query, args, limit, want_rows, record_class)
                if fut is not None:
                    return await self._wait(fut, timeout)
                # A cache miss: preparing counts against the same timeout.
                coro = self._prepare_and_run(query, args, limit, want_rows, record_class)
                if timeout is None:
                    return await coro
                return await self._wait(self._loop.create_task(coro), timeout)
            except _RECOVERABLE as exc:
                if attempt or not self._recover(exc):
                    raise

    def _start_fast(
        self, query: str, args: tuple, limit: int, want_rows: bool, blocking: bool = False
    ):
        """Starts ``query`` without the checks of :meth:`_execute` when none can apply:
        no timeout, no query logger, no cancellation under way, the statement cached.
        Returns the protocol future, or None for the checked path.  It also stands aside
        when :meth:`_execute` is not this class's own (a tracer wrapped it, a subclass
        overrode it): in asyncpg every query passes through ``_execute``.  ``blocking``
        is the blocking face's, which reads the socket itself: the outcome then comes in
        a lighter waiter than a loop future.

        A call with neither arguments nor rows wanted is a script (``execute()`` without
        arguments): the simple protocol, started only when nothing else is under way.
        Scripts never pass through :meth:`_execute` (see :meth:`_execute_script`), so a
        tracer of it does not matter to them."""
        # One condition for both faces, inline: this runs once per query.
        if self._cancellations or self._query_loggers or self._config.command_timeout is not None:
            return None
        protocol = self._protocol
        if args or want_rows:
            if type(self)._execute is not _OWN_EXECUTE:
                return None
            if blocking:
                return protocol.send_cached(query, args, limit, want_rows)
            return protocol.fast_execute(query, args, limit, want_rows)
        if protocol.has_pending():
            return None
        return protocol.query_script(query)

    async def _fast_failed(self, exc: BaseException, fut, query, args, limit, want_rows) -> Any:
        """Handles the failure of a :meth:`_start_fast` future as :meth:`_execute` would
        have: the callers await the future themselves, so that the common case runs in
        one coroutine, and come here only when it raised."""
        if isinstance(exc, asyncio.CancelledError):
            self._abandon(fut)
        elif isinstance(exc, exceptions.OutdatedSchemaCacheError):
            self._schema_changed()
        elif isinstance(exc, _RECOVERABLE) and self._recover(exc):
            # The one retry _execute_retrying would have made.
            return await self._prepare_and_run(query, args, limit, want_rows, None)
        raise exc

    def _recover(self, exc: BaseException) -> bool:
        """Deals with what a failed run of a cached (or just prepared) statement says,
        and whether running it once more is safe.

        * Its plan went stale (a schema change): every cached plan may be, and outside
          a transaction block preparing again is safe.
        * A statement this connection named was missing (26000) or already there
          (42P05) on the server: a transaction-mode pooler (pgbouncer) handed the
          request another server session, and the protocol switched to pooler mode
          (every statement bound unnamed, parsed in the same request). The failing
          Bind or Parse opened its request, so nothing of it ran; outside a transaction
          block the server is idle again and the call runs once more. Inside one the
          error stands (the transaction is aborted; its hint says so), and the next
          transaction runs in pooler mode. After the user's own ``DEALLOCATE`` or
          ``DISCARD ALL`` the statements are just prepared again.
        """
        if isinstance(exc, exceptions.InvalidCachedStatementError):
            self._drop_global_statement_cache()
            return not self.is_in_transaction()
        return self._statement_lost()

    def _statement_lost(self) -> bool:
        """After a missing (26000) or duplicate (42P05) prepared statement: see
        :meth:`_recover`. True when running the call once more is safe."""
        protocol = self._protocol
        if protocol.pooler_mode:
            # Switched by this error, or by another's while this request was on its
            # way: either way the request named a statement and failed at once.
            if not self._behind_pooler:
                self._behind_pooler = True
                self._pooler_found()
        elif protocol.statements_discarded():
            self._drop_local_statement_cache()
        else:
            return False
        return not self.is_in_transaction()

    def _pooler_found(self) -> None:
        """This connection met a transaction-mode pooler: its pool's other connections,
        and the ones it opens later, go to pooler mode at once."""
        holder_ref = self._pool_holder
        holder = holder_ref() if holder_ref is not None else None
        if holder is not None:
            holder._pool._enter_pooler_mode()

    async def _prepare_and_run(self, query, args, limit, want_rows, record_class) -> Any:
        stmt = await self._get_statement(query, None, record_class=record_class)
        return await self._wait(
            self._protocol.execute_statement(stmt, args, limit, want_rows), None
        )

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        """Execute an SQL command for its effect (the docstring's first words are an API
        fact: asyncpg's test of pool wrappers looks for them). Without ``args`` the text
        may hold several statements (sent as one simple-protocol script); the result is
        the command tag the server gave the last one, e.g. ``'INSERT 0 1'``."""
        if not args:
            return await self._execute_script(query, timeout)
        if timeout is None:
            fut = self._start_fast(query, args, 0, False)
            if fut is not None:
                try:
                    return await fut
                except BaseException as exc:
                    return await self._fast_failed(exc, fut, query, args, 0, False)
        return await self._execute(query, args, 0, timeout, want_rows=False)

    async def _execute_script(self, query: str, timeout: float | None) -> str:
        """Runs a script with the simple protocol.  As in asyncpg it does not pass through
        :meth:`_execute`: a tracer that wraps both (Sentry's integration) would report
        the script twice."""
        timeout = self._timeout(timeout)
        await self._ready_for_operation(timeout)
        with self._log_query(query, (), timeout):
            return await self._wait(self._protocol.query_script(query), timeout)

    async def fetch(
        self, query: str, *args: Any, timeout: float | None = None, record_class: Any = None
    ) -> list:
        """Runs a query and returns every row as a list of Records."""
        if timeout is None and record_class is None:
            fut = self._start_fast(query, args, 0, True)
            if fut is not None:
                try:
                    return await fut
                except BaseException as exc:
                    return await self._fast_failed(exc, fut, query, args, 0, True)
        return await self._execute(
            query, args, 0, timeout, want_rows=True, record_class=record_class
        )

    async def fetchrow(
        self, query: str, *args: Any, timeout: float | None = None, record_class: Any = None
    ):
        """Runs a query and returns its first row, or None."""
        fut = None
        if timeout is None and record_class is None:
            fut = self._start_fast(query, args, 1, True)
        if fut is not None:
            try:
                rows = await fut
            except BaseException as exc:
                rows = await self._fast_failed(exc, fut, query, args, 1, True)
        else:
            rows = await self._execute(
                query, args, 1, timeout, want_rows=True, record_class=record_class
            )
        return rows[0] if rows else None

    async def fetchval(
        self, query: str, *args: Any, column: int | str = 0, timeout: float | None = None
    ) -> Any:
        """Runs a query and returns one value of its first row, or None."""
        fut = self._start_fast(query, args, 1, True) if timeout is None else None
        if fut is not None:
            try:
                rows = await fut
            except BaseException as exc:
                rows = await self._fast_failed(exc, fut, query, args, 1, True)
        else:
            rows = await self._execute(query, args, 1, timeout, want_rows=True)
        return rows[0][column] if rows else None

    async def _executemany(
        self,
        query: str,
        args: Any,
        timeout: float | None,
        *,
        want_rows: bool,
        record_class: Any = None,
    ) -> Any:
        timeout = self._timeout(timeout)
        await self._ready_for_operation(timeout)
        with self._log_query(query, args, timeout):
            deadline = None if timeout is None else time.monotonic() + timeout
            # A one-shot iterator cannot be replayed, so only re-iterable input is retried.
            replayable = iter(args) is not args
            for attempt in (0, 1):
                try:
                    stmt = await self._get_statement(query, timeout, record_class=record_class)
                    remaining = None
                    if deadline is not None:
                        remaining = max(deadline - time.monotonic(), 0.001)
                    return await self._wait(
                        self._loop.create_task(self._stream_many(stmt, args, want_rows)),
                        remaining,
                    )
                except exceptions.InvalidCachedStatementError:
                    self._drop_global_statement_cache()
                    if attempt or not replayable or self.is_in_transaction():
                        raise
                    await self._ready_for_operation(timeout)

    async def _stream_many(self, stmt, args: Any, want_rows: bool) -> Any:
        protocol = self._protocol
        fut = protocol.executemany_begin(stmt, want_rows)
        seqno = 0
        try:
            iterator = iter(args)
            while True:
                more, seqno = protocol.executemany_feed(stmt, iterator, _MANY_BATCH_BYTES, seqno)
                if not more:
                    break
                # Let the loop read what the server said: an error stops the input early.
                await asyncio.sleep(0)
                await protocol.writing_allowed()
        except asyncio.CancelledError:
            # A timeout or a cancelled caller: end the exchange without waiting for it;
            # the next operation waits for its ReadyForQuery.
            protocol.executemany_end(seqno > 0)
            fut.cancel()
            raise
        except BaseException as client_error:
            protocol.executemany_end(seqno > 0)
            # A server error that came first explains the failure better.
            try:
                await asyncio.shield(fut)
            except exceptions.PostgresError as server_error:
                raise server_error from client_error
            except BaseException:
                # Cancelled while waiting for the server's answer: abandon the future
                # too, or the connection would count as busy.
                fut.cancel()
                raise
            raise
        protocol.executemany_end(False)
        result = await fut
        return result if want_rows else None

    async def executemany(self, command: str, args: Any, *, timeout: float | None = None) -> None:
        """Runs ``command`` once per argument sequence in ``args``, atomically, pipelined."""
        return await self._executemany(command, args, timeout, want_rows=False)

    async def fetchmany(
        self, query: str, args: Any, *, timeout: float | None = None, record_class: Any = None
    ) -> list:
        """Like :meth:`executemany`, returning the rows every execution produced."""
        return await self._executemany(
            query, args, timeout, want_rows=True, record_class=record_class
        )

    async def _prepare(
        self,
        query: str,
        *,
        name: str | None = None,
        timeout: float | None = None,
        use_cache: bool = False,
        record_class: Any = None,
    ) -> prepared_stmt.PreparedStatement:
        timeout = self._timeout(timeout)
        await self._ready_for_operation(timeout)
        stmt = await self._get_statement(
            query,
            timeout,
            named=self._stmt_cache_enabled if name is None else name,
            use_cache=use_cache,
            record_class=record_class,
        )
        return prepared_stmt.PreparedStatement(self, query, stmt)

    async def prepare(
        self,
        query: str,
        *,
        name: str | None = None,
        timeout: float | None = None,
        record_class: Any = None,
    ) -> prepared_stmt.PreparedStatement:
        """Prepares a statement for repeated use."""
        return await self._prepare(
            query, name=name, timeout=timeout, use_cache=False, record_class=record_class
        )

    def cursor(
        self,
        query: str,
        *args: Any,
        prefetch: int | None = None,
        timeout: float | None = None,
        record_class: Any = None,
    ) -> cursor.CursorFactory:
        """A cursor over ``query``'s rows: ``async for`` it, or ``await`` it for a Cursor."""
        self._check_open()
        return cursor.CursorFactory(self, query, None, args, prefetch, timeout, record_class)

    def _cancel_params(self) -> connect_utils.ConnectParams:
        # A cancel request goes the way the connection went: over TLS exactly when it did.
        if getattr(self._protocol, "is_ssl", False):
            return self._params
        return dataclasses.replace(self._params, tls=None)

    def transaction(
        self, *, isolation: str | None = None, readonly: bool = False, deferrable: bool = False
    ) -> Transaction:
        """A transaction block (a savepoint when nested), for ``async with``."""
        self._check_open()
        return Transaction(self, isolation, readonly, deferrable)

    async def reset(self, *, timeout: float | None = None) -> None:
        """Rolls back any transaction and resets session state (locks, cursors, settings,
        listeners), as a pool does before handing the connection out again.

        Only what the session may have dirtied since its last reset is undone (see
        ``docs/pools-pgbouncer-replicas.md``). In a pool, a reset with nothing to undo at
        release (no transaction, no LISTEN, advisory locks opted out) sends nothing:
        its settings part goes ahead of the next user's first request, in the same
        write."""
        self._check_open()
        protocol = self._protocol
        if protocol.is_in_transaction() or self._top_xact is not None:
            if self._top_xact is None or not self._top_xact._managed:
                self._loop.call_exception_handler(
                    {"message": f"Resetting connection with an active transaction {self!r}"}
                )
            self._top_xact = None
        policy = self._reset_policy()
        stmt = None
        if policy["advisory_locks"] and self._stmt_cache_enabled:
            stmt = protocol.cache_get(_native.UNLOCK_ADVISORY)
            # Prepared once per connection, never in a transaction block left open: an
            # aborted one would refuse the Parse (the ROLLBACK comes in the reset).
            if stmt is None and not protocol.is_in_transaction():
                stmt = await self._get_statement(_native.UNLOCK_ADVISORY, timeout)
        if policy["advisory_locks"] and stmt is None:
            # No prepared unlock to bind: the whole reset runs as one script.
            self._clear_listeners()
            at_release, _unlock, _deferred = protocol.reset_plan(**policy)
            await self.execute(f"{at_release}\n{_native.UNLOCK_ADVISORY};", timeout=timeout)
        else:
            fut, at_release = self._send_reset(policy, stmt, defer=self._pooled)
            if fut is None:
                return
            try:
                await self._wait(fut, timeout)
            except prepared_stmt.STATEMENT_LOST:
                await self._reset_after_lost_statement(at_release, timeout)
        # The reset's own statements are no footprint of the next user's.
        protocol.clear_footprint()

    async def _reset_after_lost_statement(self, at_release: str, timeout: float | None) -> None:
        """The rest of a reset whose unlock statement the server did not have."""
        protocol = self._protocol
        if protocol.statements_discarded():
            # The user's DEALLOCATE took the unlock statement: the reset is run again
            # whole, as a script.
            self._drop_local_statement_cache()
            await self.execute(f"{at_release}\n{_native.UNLOCK_ADVISORY};", timeout=timeout)
        else:
            # A transaction-mode pooler: the reset's own statement was not in the
            # session it reached. In pooler mode a reset only ends an open transaction
            # (see _reset_policy).
            protocol.enter_pooler_mode()
            self._statement_lost()
            if protocol.is_in_transaction():
                await self.execute("ROLLBACK", timeout=timeout)

    def _start_pool_reset(self) -> tuple[asyncio.Future | None, str] | None:
        """A pooled connection's :meth:`reset`, started without awaiting (the pool's
        release without a task). Returns None, having done nothing, when the full
        ``reset()`` must run instead (a transaction to end and report, or the unlock
        statement still to prepare); else ``(future, at_release)`` for the request
        sent, or ``(None, "")`` when there is nothing to wait for. Once the future
        succeeds the caller clears the footprint; for the STATEMENT_LOST errors it
        runs :meth:`_reset_after_lost_statement`."""
        protocol = self._protocol
        if self._top_xact is not None or protocol.is_in_transaction():
            return None
        policy = self._reset_policy()
        stmt = None
        if policy["advisory_locks"]:
            if self._stmt_cache_enabled:
                stmt = protocol.cache_get(_native.UNLOCK_ADVISORY)
            if stmt is None:
                return None
        return self._send_reset(policy, stmt, defer=True)

    def _send_reset(
        self, policy: dict, unlock_stmt: Any, *, defer: bool
    ) -> tuple[asyncio.Future | None, str]:
        """Plans the reset under ``policy`` and sends what is due: the utility
        statements and ``unlock_stmt`` (the prepared advisory unlock, when the policy
        asks for it) in one request. A plan with nothing due at release rides ahead of
        the next request when ``defer`` (a pool's release), else is sent now. Returns
        ``(future, at_release)`` for the request sent, or ``(None, "")``."""
        protocol = self._protocol
        self._clear_listeners()
        at_release, unlock, deferred = protocol.reset_plan(**policy)
        if unlock or at_release:
            fut = protocol.reset_request(at_release.splitlines(), unlock_stmt if unlock else None)
            return fut, at_release
        if deferred and defer:
            protocol.defer_script(deferred).add_done_callback(self._deferred_reset_done)
        elif deferred:
            return protocol.reset_request(deferred.splitlines()), deferred
        return None, ""

    def _deferred_reset_done(self, fut: asyncio.Future) -> None:
        """A deferred reset that failed leaves a session nobody may trust: close it."""
        if not fut.cancelled() and fut.exception() is not None and not self.is_closed():
            self.terminate()

    # ---------------------------------------------------------------- closing

    def _cleanup(self) -> None:
        for task in list(self._cancellations):
            task.cancel()
        self._protocol.cache_clear()
        self._protocol.discard_pending_closes()
        self._call_termination_listeners()
        # A pool holding this connection hears of the close at once.
        holder_ref, self._pool_holder = self._pool_holder, None
        holder = holder_ref() if holder_ref is not None else None
        if holder is not None and holder._con is self:
            holder._release_on_close()

    def _drop_local_statement_cache(self) -> None:
        self._protocol.cache_clear()

    def _drop_global_statement_cache(self) -> None:
        """After a plan was invalidated, every connection of the pool may hold it."""
        if self._proxy is not None:
            self._proxy._holder._pool._drop_statement_cache()
        else:
            self._drop_local_statement_cache()

    async def _within(self, aw: Any, deadline: float | None) -> None:
        if deadline is None:
            await aw
        else:
            await asyncio.wait_for(aw, max(deadline - self._loop.time(), 0))

    async def close(self, *, timeout: float | None = None) -> None:
        """Closes the connection gracefully: a running query is cancelled first, and the
        whole close fits in ``timeout`` (default: the command timeout)."""
        timeout = self._timeout(timeout)
        deadline = None if timeout is None else self._loop.time() + timeout
        try:
            if not self._protocol.is_closed():
                if self._protocol.is_busy() and not self._cancellations:
                    self._cancel_current_command()
                if self._protocol.has_pending() or self._cancellations:
                    # A CancelRequest still on its way is seen through first: a pooler
                    # in between (pgbouncer 1.18) exits when the client it cancels for
                    # hangs up meanwhile.
                    await self._within(self._unless_lost(self._wait_for_cancellation()), deadline)
                lost = self._protocol._closed_waiter()
                self._protocol.terminate()
                await self._within(lost, deadline)
        except BaseException:
            self._abort()
            raise
        finally:
            self._cleanup()

    async def _unless_lost(self, aw: Any) -> None:
        """Awaits ``aw``, or less: until the connection is lost (nothing is left to
        wait for then, and a stalled cancel request must not hold the caller)."""
        task = asyncio.ensure_future(aw)
        try:
            await asyncio.wait(
                (task, self._protocol._closed_waiter()), return_when="FIRST_COMPLETED"
            )
        finally:
            if not task.done():
                task.cancel()
        if task.done() and not task.cancelled():
            task.result()

    def terminate(self) -> None:
        """Closes the connection at once."""
        self._abort()
        self._cleanup()

    def __repr__(self) -> str:
        state = "closed" if self.is_closed() else "open"
        return f"<ferropg.Connection {state} at 0x{id(self):x}>"

    def __del__(self) -> None:
        # A connection dropped without close() would hold its server session until the
        # socket is collected: say so, as asyncpg does, and end the session now.
        protocol = getattr(self, "_protocol", None)
        if protocol is None or protocol.is_closed():
            return
        origin = getattr(self, "_source_traceback", None)
        if origin:
            where = " created at:\n" + "".join(traceback.format_list(origin))
        else:
            where = "; run in asyncio debug mode to show the traceback of connection origin"
        message = f"unclosed connection {self!r}{where}"
        # The session ends first: a warnings filter that turns the warning into an
        # exception must not leave the socket open on the loop.
        loop = getattr(self, "_loop", None)
        if loop is not None and not loop.is_closed():
            try:
                self.terminate()
            except Exception:  # noqa: S110 - nothing to report to from a finaliser
                pass
        warnings.warn(message, ResourceWarning, stacklevel=2)


#: ``Connection._execute`` as defined above; see ``Connection._start_fast``.
_OWN_EXECUTE = Connection._execute


async def connect(
    dsn: str | None = None,
    *,
    host: Any = None,
    port: Any = None,
    user: str | None = None,
    password: Any = None,
    passfile: Any = None,
    database: str | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    timeout: float = 60,
    statement_cache_size: int = 100,
    max_cached_statement_lifetime: float = 300,
    max_cacheable_statement_size: int = 1024 * 15,
    command_timeout: float | None = None,
    ssl: Any = None,
    direct_tls: Any = None,
    connection_class: type = Connection,
    record_class: type = Record,
    server_settings: dict[str, str] | None = None,
    target_session_attrs: str | None = None,
    krbsrvname: str | None = None,
    gsslib: str | None = None,
    service: str | None = None,
    servicefile: str | None = None,
) -> Connection:
    """Connects to a PostgreSQL server, as asyncpg's ``connect()`` does.

    Arguments left out come from the DSN, then from the connection service file
    (``service=``), then from the ``PG*`` environment variables, then from libpq's
    defaults; a password still missing is looked up in the password file
    (``passfile=``, ``PGPASSFILE``, ``~/.pgpass``).

    ``ssl`` is an ``sslmode`` name (``'disable'``, ``'allow'``, ``'prefer'``, the default
    over TCP, ``'require'``, ``'verify-ca'``, ``'verify-full'``), ``True`` (the default
    context, verify-full) or an ``ssl.SSLContext``; certificates come from the DSN
    (``sslrootcert``, ``sslcert``, ``sslkey``, ``sslcrl``), ``PGSSL*`` or
    ``~/.postgresql``. Unix sockets never use TLS.

    With several hosts, each is tried in turn until one matches ``target_session_attrs``
    (``'any'``, ``'primary'``, ``'standby'``, ``'read-write'``, ``'read-only'`` or
    ``'prefer-standby'``; DSN parameter ``target_session_attrs``, variable
    ``PGTARGETSESSIONATTRS``, default ``'any'``); when none does,
    :class:`~ferropg.exceptions.TargetServerAttributeNotMatched` is raised.
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    # Taken here, in the caller's task: the attempts below run in a task of their own.
    origin = traceback.extract_stack()[:-1] if loop.get_debug() else None
    if not issubclass(connection_class, Connection):
        raise exceptions.InterfaceError(
            f"connection_class is expected to be a subclass of ferropg.Connection, "
            f"got {connection_class!r}"
        )
    _check_record_class(record_class)
    command_timeout = _command_timeout_seconds(command_timeout)
    for name, value in (
        ("max_cacheable_statement_size", max_cacheable_statement_size),
        ("max_cached_statement_lifetime", max_cached_statement_lifetime),
        ("statement_cache_size", statement_cache_size),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(
                f"invalid {name} value: expected greater or equal to 0 number (got {value!r})"
            )
    config = ConnectionOptions(
        statement_cache_size=statement_cache_size,
        max_cached_statement_lifetime=max_cached_statement_lifetime,
        max_cacheable_statement_size=max_cacheable_statement_size,
        command_timeout=command_timeout,
    )
    params = connect_utils.resolve_params(
        dsn,
        host=host,
        port=port,
        user=user,
        password=password,
        passfile=passfile,
        database=database,
        server_settings=server_settings,
        target_session_attrs=target_session_attrs,
        ssl=ssl,
        direct_tls=direct_tls,
        service=service,
        servicefile=servicefile,
        krbsrvname=krbsrvname,
        gsslib=gsslib,
    )

    same_for_every_host = {
        "loop": loop,
        "params": params,
        "config": config,
        "connection_class": connection_class,
        "record_class": record_class,
    }

    async def open_connection(addr: Any) -> Connection:
        # Looked up at call time: asyncpg's tests substitute connections of their own.
        con = await connect_utils._connect_addr(addr=addr, **same_for_every_host)
        con._source_traceback = origin
        return con

    if timeout is not None and timeout <= 0:
        raise TimeoutError
    # The timeout covers every host tried and every target_session_attrs check.
    attempt = connect_utils.connect_matching(params, open_connection)
    # In this task, not wait_for's: a cancellation keeps the error it interrupted
    # (a fallback's first failure) as its cause.
    async with asyncio.timeout(timeout):
        return await attempt

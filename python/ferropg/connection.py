"""``connect()`` and ``Connection``: the asyncpg-shaped connection API."""

from __future__ import annotations

import asyncio
from typing import Any

from . import connect_utils, exceptions, serverversion
from .protocol import Protocol, Record

__all__ = ("Connection", "connect")


class ConnectionSettings:
    """The server's run-time parameters, readable as attributes (``client_encoding``...)."""

    __slots__ = ("_settings",)

    def __init__(self, settings: dict[str, str]) -> None:
        self._settings = settings

    def __getattr__(self, name: str) -> str:
        try:
            return self._settings[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"<ferropg.ConnectionSettings {self._settings!r}>"


class Connection:
    """A connection to a PostgreSQL server. Use :func:`connect` to make one."""

    def __init__(
        self,
        protocol: Protocol,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        addr: Any,
        params: connect_utils.ConnectParams,
        *,
        command_timeout: float | None = None,
        record_class: type = Record,
    ) -> None:
        self._protocol = protocol
        self._transport = transport
        self._loop = loop
        self._addr = addr
        self._params = params
        self._command_timeout = command_timeout
        self._record_class = record_class
        self._server_version = serverversion.split_server_version_string(
            protocol.get_settings().get("server_version", "0")
        )

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
        return ConnectionSettings(self._protocol.get_settings())

    def _check_open(self) -> None:
        if self._protocol.is_closed():
            raise exceptions.InterfaceError("connection is closed")

    async def _wait(self, fut: asyncio.Future, timeout: float | None) -> Any:
        if timeout is None:
            timeout = self._command_timeout
        if timeout is None:
            return await fut
        if timeout <= 0:
            fut.cancel()
            raise asyncio.TimeoutError
        return await asyncio.wait_for(fut, timeout)

    # ---------------------------------------------------------------- queries

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        """Runs a command, or with no arguments a whole script; returns the last status."""
        self._check_open()
        if not args:
            return await self._wait(self._protocol.query_script(query), timeout)
        return await self._wait(self._protocol.execute(query, args, 0, False), timeout)

    async def fetch(
        self, query: str, *args: Any, timeout: float | None = None, record_class: Any = None
    ) -> list:
        """Runs a query and returns every row as a list of Records."""
        self._check_open()
        return await self._wait(self._protocol.execute(query, args, 0, True), timeout)

    async def fetchrow(
        self, query: str, *args: Any, timeout: float | None = None, record_class: Any = None
    ):
        """Runs a query and returns its first row, or None."""
        self._check_open()
        rows = await self._wait(self._protocol.execute(query, args, 1, True), timeout)
        return rows[0] if rows else None

    async def fetchval(
        self, query: str, *args: Any, column: int | str = 0, timeout: float | None = None
    ) -> Any:
        """Runs a query and returns one value of its first row, or None."""
        self._check_open()
        rows = await self._wait(self._protocol.execute(query, args, 1, True), timeout)
        return rows[0][column] if rows else None

    # ---------------------------------------------------------------- closing

    async def close(self, *, timeout: float | None = None) -> None:
        """Closes the connection gracefully (Terminate, then wait for the server to hang up)."""
        if self._protocol.is_closed() and self._transport.is_closing():
            return
        lost = self._protocol._closed_waiter()
        self._protocol.terminate()
        try:
            if timeout is None:
                await lost
            else:
                await asyncio.wait_for(lost, timeout)
        except asyncio.TimeoutError:
            self._protocol.abort()
            raise

    def terminate(self) -> None:
        """Closes the connection at once."""
        self._protocol.abort()

    def __repr__(self) -> str:
        state = "closed" if self.is_closed() else "open"
        return f"<ferropg.Connection {state} at 0x{id(self):x}>"


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
    max_cached_statement_lifetime: int = 300,
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
) -> Connection:
    """Connects to a PostgreSQL server, as asyncpg's ``connect()`` does.

    Arguments left out come from the DSN, then from the ``PG*`` environment variables,
    then from libpq's defaults.
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    if not issubclass(connection_class, Connection):
        raise exceptions.InterfaceError(
            f"connection_class is expected to be a subclass of ferropg.Connection, "
            f"got {connection_class!r}"
        )
    params = connect_utils.resolve_params(
        dsn,
        host=host,
        port=port,
        user=user,
        password=password,
        database=database,
        server_settings=server_settings,
    )

    async def attempt() -> Connection:
        last_error: BaseException | None = None
        for addr in params.addrs:
            try:
                transport, proto = await connect_utils.connect_to(addr, params, loop)
            except OSError as e:
                last_error = e
                continue
            return connection_class(
                proto,
                transport,
                loop,
                addr,
                params,
                command_timeout=command_timeout,
                record_class=record_class,
            )
        assert last_error is not None
        raise last_error

    if timeout is not None and timeout <= 0:
        raise asyncio.TimeoutError
    return await asyncio.wait_for(attempt(), timeout)

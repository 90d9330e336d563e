"""Turning ``connect()`` arguments into addresses and startup parameters, dialling, and
choosing among several servers by ``target_session_attrs``."""

from __future__ import annotations

import asyncio
import enum
import getpass
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import _native, exceptions, protocol

if TYPE_CHECKING:
    from .connection import Connection

__all__ = (
    "ConnectParams",
    "SessionAttribute",
    "connect_matching",
    "connect_to",
    "resolve_params",
    "session_matches",
)

_CANCEL_REQUEST_CODE = 80877102

_SOCKET_DIRS = ("/run/postgresql", "/var/run/postgresql", "/tmp", "/private/tmp")


class SessionAttribute(str, enum.Enum):
    """The kind of server ``target_session_attrs`` asks for (asyncpg's enum and values)."""

    any = "any"
    primary = "primary"
    standby = "standby"
    prefer_standby = "prefer-standby"
    read_write = "read-write"
    read_only = "read-only"


def _session_attribute(value: Any) -> SessionAttribute:
    try:
        return SessionAttribute(value)
    except ValueError:
        allowed = ", ".join(repr(a.value) for a in SessionAttribute)
        raise exceptions.ClientConfigurationError(
            f"target_session_attrs is expected to be one of {allowed}, got {value!r}"
        ) from None


@dataclass
class ConnectParams:
    """Everything needed to reach and authenticate to one server."""

    addrs: list[str | tuple[str, int]]
    user: str
    password: str | None
    database: str
    server_settings: dict[str, str] = field(default_factory=dict)
    connect_timeout: float | None = None
    target_session_attrs: SessionAttribute = SessionAttribute.any


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        return [v.strip() for v in value.split(",")]
    return [value]


def resolve_params(
    dsn: str | None,
    *,
    host: Any = None,
    port: Any = None,
    user: str | None = None,
    password: Any = None,
    database: str | None = None,
    server_settings: dict[str, str] | None = None,
    target_session_attrs: Any = None,
) -> ConnectParams:
    """Merges, in order of precedence: keyword arguments, the DSN, ``PG*`` variables, defaults.

    An invalid ``target_session_attrs`` raises
    :class:`~ferropg.exceptions.ClientConfigurationError`.
    """
    from_dsn: dict[str, Any] = _native.parse_dsn(dsn) if dsn else {}
    env = os.environ

    hosts = _as_list(host) or from_dsn.get("host") or _as_list(env.get("PGHOST"))
    ports = _as_list(port) or from_dsn.get("port") or _as_list(env.get("PGPORT"))
    try:
        ports = [int(p) for p in ports]
    except ValueError as e:
        raise exceptions.ClientConfigurationError(f"invalid port: {e}") from None
    user = user or from_dsn.get("user") or env.get("PGUSER") or getpass.getuser()
    if password is None:
        password = from_dsn.get("password")
    if password is None:
        password = env.get("PGPASSWORD")
    database = database or from_dsn.get("database") or env.get("PGDATABASE") or user

    if not ports:
        ports = [5432]
    if not hosts:
        hosts = [d for d in _SOCKET_DIRS if os.path.exists(f"{d}/.s.PGSQL.{ports[0]}")]
        hosts.append("localhost")
    if len(ports) == 1:
        ports = ports * len(hosts)
    elif len(ports) != len(hosts):
        raise exceptions.ClientConfigurationError(
            f"could not match {len(ports)} port numbers to {len(hosts)} hosts"
        )
    addrs: list[str | tuple[str, int]] = []
    for h, p in zip(hosts, ports):
        if h.startswith("/"):
            addrs.append(os.path.join(h, f".s.PGSQL.{p}"))
        else:
            addrs.append((h, p))

    settings = dict(from_dsn.get("server_settings") or ())
    # The DSN parser hands back every unknown query parameter as a server setting; this one
    # is the client's, and the server would refuse it as a startup parameter.
    dsn_attrs = settings.pop("target_session_attrs", None)
    if target_session_attrs is None:
        target_session_attrs = dsn_attrs
    if target_session_attrs is None:
        target_session_attrs = env.get("PGTARGETSESSIONATTRS", SessionAttribute.any)
    attrs = _session_attribute(target_session_attrs)
    if from_dsn.get("application_name"):
        settings.setdefault("application_name", from_dsn["application_name"])
    if server_settings:
        settings.update(server_settings)
    return ConnectParams(
        addrs=addrs,
        user=user,
        password=password,
        database=database,
        server_settings=settings,
        connect_timeout=from_dsn.get("connect_timeout"),
        target_session_attrs=attrs,
    )


async def _password(password: Any) -> str | None:
    if callable(password):
        password = password()
        if asyncio.iscoroutine(password) or isinstance(password, asyncio.Future):
            password = await password
    return password


async def connect_to(
    addr: str | tuple[str, int],
    params: ConnectParams,
    loop: asyncio.AbstractEventLoop,
    *,
    record_class: type | None = None,
    config: Any = None,
) -> tuple[asyncio.Transport, protocol.Protocol]:
    """Opens one connection and completes startup and authentication on it."""
    options = [("client_encoding", "UTF8"), *params.server_settings.items()]
    password = await _password(params.password)
    cache_size = 100 if config is None else config.statement_cache_size
    lifetime = 300.0 if config is None else float(config.max_cached_statement_lifetime)
    # Looked up at call time: tests substitute their own protocol class.
    protocol_class = protocol.Protocol

    def factory() -> protocol.Protocol:
        return protocol_class(
            loop,
            params.user,
            params.database,
            password,
            options,
            record_class,
            cache_size,
            lifetime,
        )

    if isinstance(addr, str):
        transport, proto = await loop.create_unix_connection(factory, addr)
    else:
        transport, proto = await loop.create_connection(factory, addr[0], addr[1])
    try:
        await proto.wait_ready()
    except BaseException:
        transport.abort()
        raise
    return transport, proto


async def _in_hot_standby(con: Connection) -> bool:
    # PostgreSQL 14+ reports in_hot_standby at startup (and on promotion); older servers
    # have to be asked.
    status = getattr(con.get_settings(), "in_hot_standby", None)
    if status is not None:
        return status == "on"
    return bool(await con.fetchval("SELECT pg_catalog.pg_is_in_recovery()"))


async def _is_read_only(con: Connection) -> bool:
    # default_transaction_read_only (reported by 14+) makes even a primary refuse writes;
    # without it, only a hot standby does.
    if getattr(con.get_settings(), "default_transaction_read_only", "off") == "on":
        return True
    return await _in_hot_standby(con)


async def session_matches(con: Connection, attr: SessionAttribute) -> bool:
    """Whether the server behind ``con`` has the attribute ``attr`` asks for.

    ``prefer-standby`` matches a standby here; the fallback to any server is
    :func:`connect_matching`'s.
    """
    if attr is SessionAttribute.any:
        return True
    if attr is SessionAttribute.primary:
        return not await _in_hot_standby(con)
    if attr in (SessionAttribute.standby, SessionAttribute.prefer_standby):
        return await _in_hot_standby(con)
    if attr is SessionAttribute.read_write:
        return not await _is_read_only(con)
    return await _is_read_only(con)


async def connect_matching(
    params: ConnectParams,
    open_connection: Callable[[str | tuple[str, int]], Awaitable[Connection]],
) -> Connection:
    """Connects to the first address in ``params.addrs`` whose server matches
    ``params.target_session_attrs``, trying each in turn.

    ``open_connection(addr)`` opens one connection; an ``OSError`` from it moves on to the
    next address. With ``prefer-standby`` and no standby, one of the servers reached is
    used. Every connection not returned is terminated. When no server matches, the last
    ``OSError`` is raised, or else :class:`~ferropg.exceptions.TargetServerAttributeNotMatched`.
    """
    attr = params.target_session_attrs
    candidates: list[Connection] = []
    chosen: Connection | None = None
    last_error: OSError | None = None
    try:
        for addr in params.addrs:
            try:
                con = await open_connection(addr)
            except OSError as e:
                last_error = e
                continue
            candidates.append(con)
            if await session_matches(con, attr):
                chosen = con
                break
        else:
            if attr is SessionAttribute.prefer_standby and candidates:
                # asyncpg picks at random, spreading such clients over the servers.
                chosen = random.choice(candidates)
    finally:
        # Rejected servers are dropped without a goodbye: a graceful close must neither
        # delay the chosen connection nor outlive connect()'s timeout or cancellation.
        for con in candidates:
            if con is not chosen:
                con.terminate()
    if chosen is not None:
        return chosen
    if last_error is not None:
        raise last_error
    raise exceptions.TargetServerAttributeNotMatched(
        f"None of the hosts match the target attribute requirement {attr!r}"
    )


async def _cancel(
    *,
    loop: asyncio.AbstractEventLoop,
    addr: str | tuple[str, int],
    params: ConnectParams,
    backend_pid: int,
    backend_secret: bytes,
) -> None:
    """Sends a CancelRequest for ``backend_pid`` on a connection of its own.

    The server answers by closing the connection; we wait for that, so the caller knows
    the request was read.
    """
    if isinstance(addr, str):
        reader, writer = await asyncio.open_unix_connection(addr)
    else:
        reader, writer = await asyncio.open_connection(addr[0], addr[1])
    try:
        body = (
            _CANCEL_REQUEST_CODE.to_bytes(4, "big")
            + backend_pid.to_bytes(4, "big", signed=True)
            + bytes(backend_secret)
        )
        writer.write((len(body) + 4).to_bytes(4, "big") + body)
        await writer.drain()
        await reader.read()
    finally:
        writer.close()

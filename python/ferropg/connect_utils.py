"""Turning ``connect()`` arguments into addresses and startup parameters, and dialling."""

from __future__ import annotations

import asyncio
import getpass
import os
from dataclasses import dataclass, field
from typing import Any

from . import _native, exceptions, protocol

__all__ = ("ConnectParams", "resolve_params", "connect_to")

_CANCEL_REQUEST_CODE = 80877102

_SOCKET_DIRS = ("/run/postgresql", "/var/run/postgresql", "/tmp", "/private/tmp")


@dataclass
class ConnectParams:
    """Everything needed to reach and authenticate to one server."""

    addrs: list[str | tuple[str, int]]
    user: str
    password: str | None
    database: str
    server_settings: dict[str, str] = field(default_factory=dict)
    connect_timeout: float | None = None


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
) -> ConnectParams:
    """Merges, in order of precedence: keyword arguments, the DSN, ``PG*`` variables, defaults."""
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

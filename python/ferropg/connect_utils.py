"""Turning ``connect()`` arguments into addresses and startup parameters, dialling, and
choosing among several servers by ``target_session_attrs``."""

from __future__ import annotations

import asyncio
import enum
import getpass
import os
import random
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import _native, _tls, exceptions, protocol

# asyncpg's private names in this module, for code that reaches for them (asyncpg's tests,
# a few libraries): defined in _asyncpg_private, which says what each is for.
# _can_use_connection is called below through this module's global, so that replacing
# it here (as tests do) takes effect.
from ._asyncpg_private import (  # noqa: F401 - re-exported under asyncpg's paths
    _SSL_REQUEST_CODE,
    _can_use_connection,
    _ConnectionParameters,
    _parse_connect_dsn_and_args,
)
from ._home import home_file
from ._tls import SSLMode, SSLNegotiation, TLSConfig

if TYPE_CHECKING:
    from .connection import Connection

__all__ = (
    "ConnectParams",
    "SSLMode",
    "SSLNegotiation",
    "SessionAttribute",
    "connect_matching",
    "connect_to",
    "resolve_params",
    "session_matches",
)


class SessionAttribute(str, enum.Enum):  # noqa: UP042 - asyncpg's is (str, Enum) too
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
    password: str | None = field(repr=False)
    database: str
    server_settings: dict[str, str] = field(default_factory=dict)
    connect_timeout: float | None = None
    target_session_attrs: SessionAttribute = SessionAttribute.any
    #: None: never TLS (a cancel request of a connection that went without).
    tls: TLSConfig | None = None
    #: Kerberos service name and GSS library (accepted and checked; GSSAPI itself is not
    #: implemented).
    krbsrvname: str | None = None
    gsslib: str = "gssapi"
    #: libpq's ``channel_binding``: ``disable``, ``prefer`` or ``require`` (SCRAM bound
    #: to the TLS connection: SCRAM-SHA-256-PLUS).
    channel_binding: str = "prefer"


def _as_list(value: Any) -> list | None:
    """``connect()``'s ``host``/``port``: one value, a list, or a comma-separated string."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        return [v.strip() for v in value.split(",")]
    return [value]


#: The ``PG*`` variables asyncpg reads (libpq reads more, such as ``PGOPTIONS`` and
#: ``PGAPPNAME``; a drop-in does not start sending those).
_ENV_VARS = (
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGPASSFILE",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGSYSCONFDIR",
    "PGTARGETSESSIONATTRS",
    "PGKRBSRVNAME",
    "PGGSSLIB",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGSSLCRL",
    "PGSSLNEGOTIATION",
    "PGSSLMINPROTOCOLVERSION",
    "PGSSLMAXPROTOCOLVERSION",
    "PGCHANNELBINDING",
)


def resolve_params(
    dsn: str | None,
    *,
    host: Any = None,
    port: Any = None,
    user: str | None = None,
    password: Any = None,
    passfile: Any = None,
    database: str | None = None,
    server_settings: dict[str, str] | None = None,
    target_session_attrs: Any = None,
    ssl: Any = None,
    direct_tls: Any = None,
    service: str | None = None,
    servicefile: str | None = None,
    krbsrvname: str | None = None,
    gsslib: str | None = None,
) -> ConnectParams:
    """Merges, in order of precedence: keyword arguments, the DSN, the connection
    service (``service=`` of the arguments, the DSN or ``PGSERVICE``), ``PG*`` variables,
    defaults. The merge is the core's (``ferropg_core::config::resolve``).

    Without a password from any of those, the password file is read (``passfile``, the
    DSN's, the service's, ``PGPASSFILE``, then ``~/.pgpass``).

    An invalid ``target_session_attrs`` raises
    :class:`~ferropg.exceptions.ClientConfigurationError`.
    """
    try:
        ports = None if port is None else [int(p) for p in _as_list(port) or ()]
    except ValueError as e:
        raise exceptions.ClientConfigurationError(f"invalid port: {e}") from None
    explicit = {
        "host": _as_list(host) or None,
        "port": ports or None,
        "user": user,
        # A callable password is asked for at connect time, never here.
        "password": password if isinstance(password, str) else None,
        "database": database,
        "passfile": None if passfile is None else str(passfile),
        "service": service,
        "servicefile": servicefile,
        "target_session_attrs": None
        if target_session_attrs is None
        else str(_session_attribute(target_session_attrs).value),
        "krbsrvname": krbsrvname,
        "gsslib": gsslib,
        "server_settings": server_settings,
    }
    env = {name: os.environ[name] for name in _ENV_VARS if name in os.environ}
    home = home_file()
    r = _native.resolve_connect(dsn, explicit, env, str(home) if home else None, getpass.getuser)
    if r["passfile_warning"]:
        warnings.warn(r["passfile_warning"], stacklevel=3)
    options = r["options"]
    settings = r["server_settings"]
    addrs = [a if isinstance(a, str) else tuple(a) for a in r["addrs"]]
    tls = _tls.tls_config(
        ssl, direct_tls, options, have_tcp=any(not isinstance(a, str) for a in addrs)
    )
    attrs = _session_attribute(options.get("target_session_attrs") or SessionAttribute.any)
    gsslib = options.get("gsslib") or "gssapi"
    if gsslib not in ("gssapi", "sspi"):
        raise exceptions.ClientConfigurationError(
            f"gsslib parameter must be either 'gssapi' or 'sspi', got {gsslib!r}"
        )
    channel_binding = options.get("channel_binding") or "prefer"
    if channel_binding not in ("disable", "prefer", "require"):
        raise exceptions.ClientConfigurationError(
            f"channel_binding must be one of disable, prefer or require, got {channel_binding!r}"
        )
    encoding = settings.pop("client_encoding", "UTF8")
    if encoding.replace("-", "").replace("_", "").upper() not in ("UTF8", "UNICODE"):
        # Every text codec reads UTF-8; another encoding would garble what comes back.
        raise exceptions.ClientConfigurationError(
            f"client_encoding {encoding!r} is not supported: ferropg talks UTF8 only"
        )
    return ConnectParams(
        addrs=addrs,
        user=r["user"],
        password=password
        if password is not None and not isinstance(password, str)
        else r["password"],
        database=r["database"],
        server_settings=settings,
        connect_timeout=r["connect_timeout"],
        target_session_attrs=attrs,
        tls=tls,
        krbsrvname=options.get("krbsrvname"),
        gsslib=gsslib,
        channel_binding=channel_binding,
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
    """Opens one connection and completes startup and authentication on it.

    ``sslmode=prefer`` tries TLS first and ``allow`` without; either tries the other way
    once when the first attempt fails before the server accepted the credentials (its
    ``pg_hba.conf`` may want the other), or, with ``prefer``, when the TLS handshake
    fails.
    """
    tls = params.tls
    # Asked once, whatever number of attempts follows.
    password = await _password(params.password)
    common = (params, password, record_class, config)
    if isinstance(addr, str) or tls is None or tls.mode not in (SSLMode.allow, SSLMode.prefer):
        return await _attempt(loop, addr, tls, *common, retry=False)
    first, second = (tls, None) if tls.mode == SSLMode.prefer else (None, tls)
    try:
        return await _attempt(loop, addr, first, *common, retry=True)
    except _RetryOtherWay as signal:
        first_error = signal.__cause__
    try:
        return await _attempt(loop, addr, second, *common, retry=False)
    except (Exception, asyncio.CancelledError) as second_error:
        if isinstance(second_error, NextHost):
            # The server's error (the signal's cause) keeps the first failure behind it.
            second_error.__cause__.__cause__ = first_error
            raise
        if _hides_wrong_password(first_error, second_error):
            raise first_error from None
        raise second_error from first_error


#: How a server turns away a connection that its ``pg_hba.conf`` rules do not admit.
_REJECTIONS = (
    exceptions.InvalidAuthorizationSpecificationError,
    exceptions.ConnectionDoesNotExistError,
)


def _hides_wrong_password(first: BaseException | None, second: BaseException) -> bool:
    """Whether the second way only got a plain rejection after the first way was told
    that the password is wrong: the first failure is then the one worth reporting."""
    if not isinstance(first, exceptions.InvalidPasswordError):
        return False
    return isinstance(second, _REJECTIONS) and not isinstance(
        second, exceptions.InvalidPasswordError
    )


class _RetryOtherWay(Exception):
    """The attempt failed in a way that the other TLS choice may not (see ``__cause__``)."""


class NextHost(Exception):
    """The server cannot take connections now (starting up, shutting down, in recovery):
    the next address should be tried. ``__cause__`` is the server's error."""


async def _attempt(
    loop: asyncio.AbstractEventLoop,
    addr: str | tuple[str, int],
    tls: TLSConfig | None,
    params: ConnectParams,
    password: str | None,
    record_class: type | None,
    config: Any,
    *,
    retry: bool,
) -> tuple[asyncio.Transport, protocol.Protocol]:
    options = [("client_encoding", "UTF8"), *params.server_settings.items()]
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
            channel_binding=params.channel_binding,
        )

    try:
        transport, proto, on_tls = await _tls.open_stream(loop, addr, tls, factory)
    except _tls.HandshakeFailed as e:
        if retry:
            raise _RetryOtherWay() from e.__cause__
        raise e.__cause__ from None
    try:
        await proto.wait_ready()
    except exceptions.PostgresError as e:
        transport.abort()
        if not proto.auth_received():
            if isinstance(e, exceptions.CannotConnectNowError):
                raise NextHost() from e
            if retry and on_tls == (tls is not None):
                raise _RetryOtherWay() from e
        raise
    except BaseException:
        transport.abort()
        raise
    proto.is_ssl = on_tls
    return transport, proto


async def _server_state(con: Connection) -> tuple[bool, bool]:
    """``(in hot standby, read-only)``: from what the server reported at startup
    (PostgreSQL 14+), else by asking it. The decision is the core's."""
    state = _native.server_state(con._protocol.get_settings())
    if state is None:
        row = await con.fetchrow(_native.SESSION_STATE_QUERY)
        state = _native.server_state_from_row(row[0], row[1])
    return state


async def session_matches(con: Connection, attr: SessionAttribute) -> bool:
    """Whether the server behind ``con`` has the attribute ``attr`` asks for.

    ``prefer-standby`` matches a standby here; the fallback to any server is
    :func:`connect_matching`'s.
    """
    if attr is SessionAttribute.any:
        return True
    return _native.session_accepts(attr.value, await _server_state(con))


async def _connect_addr(
    *,
    addr: str | tuple[str, int],
    loop: asyncio.AbstractEventLoop,
    params: ConnectParams,
    config: Any,
    connection_class: type,
    record_class: type | None,
) -> Connection:
    """Opens one connection to ``addr`` (:func:`connect_to`) and wraps it in a
    ``connection_class`` instance."""
    transport, proto = await connect_to(
        addr, params, loop, record_class=record_class, config=config
    )
    try:
        return connection_class(proto, transport, loop, addr, params, config)
    except BaseException:
        transport.abort()
        raise


async def connect_matching(
    params: ConnectParams,
    open_connection: Callable[[str | tuple[str, int]], Awaitable[Connection]],
) -> Connection:
    """Connects to the first address in ``params.addrs`` whose server matches
    ``params.target_session_attrs``, trying each in turn.

    ``open_connection(addr)`` opens one connection; an ``OSError`` or :class:`NextHost`
    from it moves on to the next address. With ``prefer-standby`` and no standby, one of
    the servers reached is used. Every connection not returned is terminated. When no
    server matches, the last such error is raised (the server's, for :class:`NextHost`),
    or else :class:`~ferropg.exceptions.TargetServerAttributeNotMatched`.
    """
    attr = params.target_session_attrs
    candidates: list[Connection] = []
    chosen: Connection | None = None
    last_error: BaseException | None = None
    try:
        for addr in params.addrs:
            try:
                con = await open_connection(addr)
            except OSError as e:
                last_error = e
                continue
            except NextHost as signal:
                last_error = signal.__cause__
                continue
            candidates.append(con)
            # Looked up at call time, like _connect_addr: asyncpg's tests replace both.
            if await _can_use_connection(con, attr):
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
    the request was read. It goes over TLS when ``params.tls`` says so: the caller passes
    the TLS settings only when its connection used TLS.
    """
    request = _native.cancel_request(backend_pid, bytes(backend_secret))
    closed = loop.create_future()
    try:
        transport, _, _ = await _tls.open_stream(
            loop, addr, params.tls, lambda: _CancelSender(request, closed)
        )
    except _tls.HandshakeFailed as e:
        raise e.__cause__ from None
    try:
        await closed
    except BaseException:
        # Our caller left (the connection closed meanwhile): the request is out, and
        # the server, or a pooler in front of it, hangs up once it has read it. Hanging
        # up first can cut the request short, and pgbouncer before 1.21 exits on a
        # cancel whose client is gone. So the socket closes on its own, within a bound.
        if closed.done():
            transport.close()
        else:
            linger = loop.call_later(_CANCEL_LINGER, transport.close)
            closed.add_done_callback(lambda _: linger.cancel())
        raise
    transport.close()


#: Seconds a cancel request's socket stays open after its caller left.
_CANCEL_LINGER = 10.0


class _CancelSender(asyncio.Protocol):
    """Writes a CancelRequest, then waits for the server to hang up."""

    def __init__(self, request: bytes, closed: asyncio.Future) -> None:
        self.request = request
        self.closed = closed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

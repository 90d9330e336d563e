"""TLS for connections: ``sslmode`` and the options around it as libpq and asyncpg read
them (arguments, DSN, ``PGSSL*`` variables, ``~/.postgresql``), and the negotiation with
the server: an SSLRequest answered ``S`` or ``N``, or TLS at once (``sslnegotiation=direct``).
"""

from __future__ import annotations

import asyncio
import enum
import os
import pathlib
import ssl as ssl_module
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import _native, exceptions
from ._home import home_file

__all__ = (
    "HandshakeFailed",
    "SSL_REQUEST_CODE",
    "SSLMode",
    "SSLNegotiation",
    "TLSConfig",
    "open_stream",
    "tls_config",
)

#: The code an SSLRequest carries where a StartupMessage has its protocol version.
SSL_REQUEST_CODE = 80877103
#: Built by the core's encoder, like every message.
_SSL_REQUEST = _native.ssl_request()

#: The ALPN protocol name PostgreSQL 17 requires for direct TLS.
_ALPN = ["postgresql"]


class SSLMode(enum.IntEnum):
    """libpq's ``sslmode`` values, weakest first (asyncpg's enum)."""

    disable = 0
    allow = 1
    prefer = 2
    require = 3
    verify_ca = 4
    verify_full = 5

    @classmethod
    def parse(cls, value: str | SSLMode) -> SSLMode:
        """``'verify-full'`` (or ``'verify_full'``, or the member) as a member; an
        unknown name raises AttributeError."""
        if isinstance(value, cls):
            return value
        try:
            return cls.__members__[value.replace("-", "_")]
        except KeyError:
            raise AttributeError(value) from None


class SSLNegotiation(enum.StrEnum):
    """How TLS starts: after an SSLRequest (``postgres``) or at once (``direct``)."""

    postgres = "postgres"
    direct = "direct"


@dataclass(frozen=True)
class TLSConfig:
    """What a connection attempt does about TLS."""

    mode: SSLMode
    #: None when ``mode`` is ``disable``.
    context: ssl_module.SSLContext | None
    negotiation: SSLNegotiation = SSLNegotiation.postgres
    #: Whether TLS was asked about at all (argument, DSN, service or environment)
    #: rather than left to the default.
    asked: bool = True

    @property
    def advisory(self) -> bool:
        """True when a server that declines TLS may be used without it (``prefer``)."""
        return self.mode == SSLMode.prefer


def _dot_postgresql(name: str) -> pathlib.Path | None:
    """``~/.postgresql/name``, or None when there is no usable home directory."""
    return home_file(".postgresql", name)


def _tls_version(value: str) -> ssl_module.TLSVersion:
    try:
        return ssl_module.TLSVersion[value.replace(".", "_")]
    except KeyError:
        raise exceptions.ClientConfigurationError(
            f"ssl_min/max_protocol_version is expected to be one of TLSv1, TLSv1.1, "
            f"TLSv1.2 or TLSv1.3, got {value!r}"
        ) from None


def _verify_locations(ctx: ssl_module.SSLContext, mode: SSLMode, rootcert: str | None) -> None:
    """Loads the root certificates: an explicit file must exist; the default
    ``~/.postgresql/root.crt`` may be missing with ``require``, which then checks nothing
    (libpq's rule), but not with ``verify-ca`` or ``verify-full``."""
    if rootcert == "system":
        # libpq 16: the roots the platform trusts (OpenSSL's default paths, which
        # SSL_CERT_FILE and SSL_CERT_DIR override).
        ctx.load_default_certs(ssl_module.Purpose.SERVER_AUTH)
        ctx.verify_mode = ssl_module.CERT_REQUIRED
        return
    if rootcert:
        ctx.load_verify_locations(cafile=rootcert)
        ctx.verify_mode = ssl_module.CERT_REQUIRED
        return
    default = _dot_postgresql("root.crt")
    if default is not None:
        try:
            ctx.load_verify_locations(cafile=default)
        except (FileNotFoundError, NotADirectoryError):
            pass
        else:
            ctx.verify_mode = ssl_module.CERT_REQUIRED
            return
    if mode == SSLMode.require:
        ctx.verify_mode = ssl_module.CERT_NONE
        return
    detail = None
    if default is None:
        detail = (
            "Could not determine location of user home directory (HOME is either "
            "unset, inaccessible, or does not point to a valid directory)"
        )
    where = "~/.postgresql/root.crt" if default is None else str(default)
    raise exceptions.ClientConfigurationError(
        f'root certificate file "{where}" does not exist or cannot be accessed',
        hint=f'Provide the certificate file directly or make sure "{where}" exists '
        "and is readable.",
        detail=detail,
    )


def _load_crl(ctx: ssl_module.SSLContext, crl: str | None) -> None:
    if not crl:
        default = _dot_postgresql("root.crl")
        if default is None or not default.exists():
            return
        crl = str(default)
    ctx.load_verify_locations(cafile=crl)
    ctx.verify_flags |= ssl_module.VERIFY_CRL_CHECK_CHAIN


def _load_client_cert(
    ctx: ssl_module.SSLContext, cert: str | None, key: str | None, password: str
) -> None:
    if not key:
        default_key = _dot_postgresql("postgresql.key")
        key = str(default_key) if default_key is not None and default_key.exists() else None
    if cert:
        ctx.load_cert_chain(cert, keyfile=key, password=lambda: password)
        return
    default = _dot_postgresql("postgresql.crt")
    if default is not None:
        try:
            ctx.load_cert_chain(default, keyfile=key, password=lambda: password)
        except (FileNotFoundError, NotADirectoryError):
            pass


def _context_for(mode: SSLMode, option: Callable[[str], Any]) -> ssl_module.SSLContext:
    ctx = ssl_module.SSLContext(ssl_module.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = mode >= SSLMode.verify_full
    if mode < SSLMode.require:
        ctx.verify_mode = ssl_module.CERT_NONE
    else:
        _verify_locations(ctx, mode, option("sslrootcert"))
        _load_crl(ctx, option("sslcrl"))
    _load_client_cert(ctx, option("sslcert"), option("sslkey"), option("sslpassword") or "")
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog and not sys.flags.ignore_environment:
        ctx.keylog_filename = keylog
    ctx.minimum_version = _tls_version(option("ssl_min_protocol_version") or "TLSv1.2")
    if option("ssl_max_protocol_version"):
        ctx.maximum_version = _tls_version(option("ssl_max_protocol_version"))
    return _offer_alpn(ctx)


def _offer_alpn(ctx: ssl_module.SSLContext) -> ssl_module.SSLContext:
    # Direct TLS needs the protocol name; with an SSLRequest first it does no harm.
    if ssl_module.HAS_ALPN:
        ctx.set_alpn_protocols(_ALPN)
    return ctx


def _parse_sslmode(name: str | SSLMode) -> SSLMode:
    try:
        return SSLMode.parse(name)
    except AttributeError:
        pass
    spelled = ", ".join(member.name.replace("_", "-") for member in SSLMode)
    raise exceptions.ClientConfigurationError(f"`sslmode` parameter must be one of: {spelled}")


def _mode_and_context(
    ssl: Any, option: Callable[[str], Any]
) -> tuple[SSLMode, ssl_module.SSLContext | None]:
    """What the ``ssl`` argument (or the DSN's ``sslmode``) stands for."""
    if ssl is True:
        return SSLMode.verify_full, _offer_alpn(ssl_module.create_default_context())
    if isinstance(ssl, ssl_module.SSLContext):
        # The caller's context is used untouched and treated as ``require``.
        return SSLMode.require, ssl
    if not isinstance(ssl, (str, SSLMode)):
        return SSLMode.disable, None
    mode = _parse_sslmode(ssl)
    if mode == SSLMode.disable:
        return mode, None
    return mode, _context_for(mode, option)


def _negotiation(direct_tls: Any, option: Callable[[str], Any]) -> SSLNegotiation:
    """``direct_tls=`` when given, else the ``sslnegotiation`` option (default postgres)."""
    if direct_tls is not None:
        return SSLNegotiation.direct if direct_tls else SSLNegotiation.postgres
    name = option("sslnegotiation")
    if name is None:
        return SSLNegotiation.postgres
    if name not in {member.value for member in SSLNegotiation}:
        raise exceptions.ClientConfigurationError(
            "`sslnegotiation` parameter must be one of: postgres, direct"
        )
    return SSLNegotiation(name)


def tls_config(
    ssl: Any,
    direct_tls: Any,
    options: Mapping[str, Any],
    *,
    have_tcp: bool,
) -> TLSConfig:
    """The TLS settings of a connection from ``connect(ssl=, direct_tls=)``, then the
    TLS options the DSN, the service and the ``PGSSL*`` variables settled on (``options``).

    ``ssl`` is a mode name or :class:`SSLMode` (a context is built for it), ``True``
    (the default context, verify-full), an ``ssl.SSLContext`` (used as it is, as
    ``require``), or false for no TLS. Left out, it is ``prefer`` when any address is TCP.
    """
    option = options.get
    if ssl is None:
        ssl = option("sslmode")
    asked = ssl is not None
    if option("sslrootcert") == "system" and (ssl is None or isinstance(ssl, (str, SSLMode))):
        # The core's rule: verify-full by default, and no weaker mode (libpq 16).
        name = None if ssl is None else _parse_sslmode(ssl).name.replace("_", "-")
        ssl = _native.ssl_mode(name, "system")
        asked = True
    if ssl is None and have_tcp:
        ssl = "prefer"

    negotiation = _negotiation(direct_tls, option)
    mode, context = _mode_and_context(ssl, option)
    if negotiation is SSLNegotiation.direct and mode < SSLMode.require:
        raise exceptions.ClientConfigurationError(
            "direct TLS requires sslmode=require, verify-ca, or verify-full"
        )
    return TLSConfig(mode=mode, context=context, negotiation=negotiation, asked=asked)


class HandshakeFailed(Exception):
    """The TLS handshake failed; ``__cause__`` says how."""


class _SSLAnswer(asyncio.Protocol):
    """Sends an SSLRequest and reads the server's one-byte answer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, where: str, advisory: bool) -> None:
        self.answer: asyncio.Future[bool] = loop.create_future()
        self.where = where
        self.advisory = advisory

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(_SSL_REQUEST)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            return
        answer = _native.ssl_answer(data)
        if answer == "tls":
            self.answer.set_result(True)
        elif answer == "plain" and self.advisory:
            self.answer.set_result(False)
        elif answer == "error":
            # Nothing sent before TLS can be trusted, an error's fields included
            # (CVE-2024-10977): only say that there was one.
            self.answer.set_exception(
                ConnectionError(
                    f"PostgreSQL server at {self.where}: server sent an error response "
                    "during SSL exchange; check the server logs for details"
                )
            )
        else:
            # "N" where TLS is required, or bytes after the answer, which a
            # man-in-the-middle could have injected (CVE-2021-23222).
            self.answer.set_exception(
                ConnectionError(f"PostgreSQL server at {self.where} rejected SSL upgrade")
            )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc or ConnectionError("unexpected connection_lost() call"))


async def open_stream(
    loop: asyncio.AbstractEventLoop,
    addr: str | tuple[str, int],
    tls: TLSConfig | None,
    factory: Callable[[], asyncio.Protocol],
) -> tuple[asyncio.Transport, Any, bool]:
    """Connects to ``addr`` and hands the stream to a protocol from ``factory``, after
    TLS when ``tls`` asks for it (never on a Unix socket). Returns the transport, the
    protocol and whether TLS is on.

    With ``prefer``, a server answering ``N`` is used without TLS; with stronger modes
    that is a ConnectionError. A failed handshake after ``S`` raises
    :class:`HandshakeFailed`, from the handshake's error.
    """
    if isinstance(addr, str):
        transport, proto = await loop.create_unix_connection(factory, addr)
        return transport, proto, False
    host, port = addr
    if tls is None or tls.context is None:
        transport, proto = await loop.create_connection(factory, host, port)
        return transport, proto, False
    if tls.negotiation is SSLNegotiation.direct:
        transport, proto = await loop.create_connection(
            factory, host, port, ssl=tls.context, server_hostname=host
        )
        return transport, proto, True
    transport, answer = await loop.create_connection(
        lambda: _SSLAnswer(loop, f'"{host}:{port}"', tls.advisory), host, port
    )
    try:
        upgrade = await answer.answer
        if upgrade:
            try:
                upgraded = await loop.start_tls(
                    transport, answer, tls.context, server_hostname=host
                )
            except OSError as e:
                # A timeout is the caller's deadline, not the handshake's failure.
                if isinstance(e, TimeoutError):
                    raise
                raise HandshakeFailed() from e
            if upgraded is None:
                raise ConnectionError("connection closed during TLS handshake")
            transport = upgraded
    except BaseException:
        transport.close()
        raise
    try:
        proto = factory()
        transport.set_protocol(proto)
        proto.connection_made(transport)
    except BaseException:
        transport.close()
        raise
    return transport, proto, upgrade

"""Adapters for asyncpg's private API, kept in one place.

asyncpg's own test suite, which ferropg runs as its conformance check, looks inside the
driver: it reads private attributes of connections and pools, and calls or replaces
private functions of ``asyncpg.connect_utils``.  A few libraries and applications do the
same.  ferropg's own code has no use for the names below: they exist only so that such
code finds what it expects.  Their logic lives here; the public modules expose them
under asyncpg's paths by inheriting a mixin or re-exporting a name, and nothing else.

What this module provides, and where each name is exposed:

``ConnectionHooks`` (a base class of :class:`ferropg.connection.Connection`)
    ``Connection._stmt_cache``: a :class:`StatementCacheView` over the protocol's
    statement cache, with asyncpg's LRU methods (``get``, ``iter_statements``,
    ``get_max_size`` ...).  ``Connection._stmts_to_close``: the statements the cache let
    go of, waiting to be closed on the server.

``HolderQueueHooks`` (a base class of ``ferropg.pool._HolderQueue``, which is
``Pool._queue``)
    ``qsize()`` and ``empty()``: asyncpg's pool queue is an :class:`asyncio.LifoQueue`,
    and its tests count the idle holders with ``pool._queue.qsize()``.

``_parse_connect_dsn_and_args``, ``_ConnectionParameters`` (re-exported by
:mod:`ferropg.connect_utils`)
    :func:`~ferropg.connect_utils.resolve_params` in the shape asyncpg's function of that
    name returns: the addresses, and a named tuple of the resolved settings.

``_can_use_connection`` (re-exported by :mod:`ferropg.connect_utils`)
    The target_session_attrs check of one candidate connection, as a module attribute of
    ``connect_utils`` that ``connect_matching`` looks up at call time: tests replace it
    with ``mock.patch.object(connect_utils, "_can_use_connection", ...)``.  The
    re-exported binding is the one that is called, so it must stay a plain name there.

``_SSL_REQUEST_CODE`` (re-exported by :mod:`ferropg.connect_utils`)
    The SSLRequest code; the request itself is built by the core.

Names that answer to asyncpg's private paths but stay where they are:

* ``connection._uid``: the counter behind unique statement, portal and savepoint names,
  read by tests.  ``Connection._get_unique_id`` (which ferropg uses itself) bumps it, so
  it must be the live module global of :mod:`ferropg.connection`; a copy would go stale.
* ``connect_utils._connect_addr`` and ``connect_utils._cancel``: ferropg's own way of
  opening a connection and of sending a cancel request.  Tests and tracers (Sentry,
  New Relic) replace them on the module, so callers look them up there at call time.
* ``protocol.protocol._create_record`` (an alias of the extension's function, imported
  by tests), ``protocol.protocol.BUILTIN_TYPE_OID_MAP`` (generated; ferropg's
  ``ConnectionSettings.get_data_codec`` uses it) and ``cursor.BaseCursor`` /
  ``BaseCursor._exec`` (aliases that tracers wrap): plain aliases, no logic.
* Attributes that ferropg's own code needs and that carry asyncpg's names so that
  outside code finds them: ``Connection._protocol``, ``_transport``, ``_addr``,
  ``_params``, ``_config``, ``_top_xact``, ``_cancellations``, ``_server_caps``,
  ``_query_loggers``, ``_prepare``, ``_get_statement``, ``_introspect_types``,
  ``_cancel_current_command``, ``_execute``, ``_executemany``; ``Protocol._is_cancelling``
  and ``_drain_cancels``; ``Pool._holders``, ``_queue``, ``_maintenance_task``,
  ``_maintain_min_size``; the holders' ``_con``, ``_in_use``, ``_inactive_callback``; a
  pool proxy's ``_con`` and ``_holder``; ``PreparedStatement._state``;
  ``utils._mogrify``.

Nothing here imports :mod:`ferropg.connect_utils` or :mod:`ferropg.connection` at import
time: both import this module, so their names are looked up when a function runs.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, NamedTuple

from ._tls import SSL_REQUEST_CODE

if TYPE_CHECKING:
    from ._tls import SSLMode, SSLNegotiation
    from .connect_utils import SessionAttribute
    from .connection import Connection
    from .protocol import Protocol

__all__ = (
    "ConnectionHooks",
    "HolderQueueHooks",
    "StatementCacheView",
    "_ConnectionParameters",
    "_SSL_REQUEST_CODE",
    "_can_use_connection",
    "_parse_connect_dsn_and_args",
)


# ------------------------------------------------------------------- connections ---


class StatementCacheView:
    """``Connection._stmt_cache``: the protocol's statement cache behind asyncpg's LRU
    methods.  It keeps no state of its own; every call asks the protocol."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: Protocol) -> None:
        self._protocol = protocol

    def get_max_size(self) -> int:
        """How many statements the cache keeps (0: it keeps none)."""
        return self._protocol.cache_max_size()

    def set_max_size(self, size: int) -> None:
        """Sets how many statements the cache keeps; those over the new size are closed."""
        self._protocol.cache_set_max_size(size)

    def get_max_lifetime(self) -> float:
        """Seconds a cached statement lives after it was prepared (0: no limit)."""
        return self._protocol.cache_max_lifetime()

    def set_max_lifetime(self, seconds: float) -> None:
        """Sets the lifetime of cached statements."""
        self._protocol.cache_set_max_lifetime(seconds)

    def get(self, key: tuple, *, promote: bool = True) -> Any:
        """The statement cached for ``(query, record_class, ignore_custom_codec)``, or
        None.  ``promote`` is accepted for asyncpg's signature and not used."""
        query, record_class, ignore_custom_codec = key
        return self._protocol.cache_get(query, record_class, ignore_custom_codec)

    def iter_statements(self):
        """An iterator over the cached statements' states, oldest use first."""
        return iter(self._protocol.cache_statements())

    def clear(self) -> None:
        """Empties the cache."""
        self._protocol.cache_clear()

    def __len__(self) -> int:
        return self._protocol.cache_len()


class ConnectionHooks:
    """The private attributes of asyncpg's connection that ferropg keeps only for code
    that inspects them (mixed into :class:`~ferropg.connection.Connection`)."""

    _protocol: Protocol

    @functools.cached_property
    def _stmt_cache(self) -> StatementCacheView:
        # Made on first use and kept, so that the attribute is the same object each time.
        return StatementCacheView(self._protocol)

    @property
    def _stmts_to_close(self) -> set:
        """Statements dropped from the cache and not closed on the server yet."""
        return set(self._protocol.pending_closes())


# ------------------------------------------------------------------------- pools ---


class HolderQueueHooks:
    """The size queries of :class:`asyncio.Queue`, which asyncpg's ``Pool._queue`` is,
    for ferropg's holder stack (mixed into ``ferropg.pool._HolderQueue``)."""

    __slots__ = ()

    _stack: list

    def qsize(self) -> int:
        """How many holders wait in the queue."""
        return len(self._stack)

    def empty(self) -> bool:
        """True when no holder waits in the queue."""
        return not self._stack


# ------------------------------------------------------------- connect_utils ---

#: The code of an SSLRequest message (``connect_utils._SSL_REQUEST_CODE``).
_SSL_REQUEST_CODE = SSL_REQUEST_CODE


class _ConnectionParameters(NamedTuple):
    """The resolved settings, as :func:`_parse_connect_dsn_and_args` returns them."""

    user: str
    password: Any
    database: str
    ssl: Any
    sslmode: SSLMode
    ssl_negotiation: SSLNegotiation
    server_settings: dict[str, str] | None
    target_session_attrs: SessionAttribute
    krbsrvname: str | None
    gsslib: str


def _parse_connect_dsn_and_args(
    *,
    dsn: str | None,
    host: Any,
    port: Any,
    user: str | None,
    password: Any,
    passfile: Any,
    database: str | None,
    ssl: Any,
    direct_tls: Any = None,
    server_settings: dict[str, str] | None,
    target_session_attrs: Any,
    krbsrvname: str | None = None,
    gsslib: str | None = None,
    service: str | None = None,
    servicefile: str | None = None,
) -> tuple[list[str | tuple[str, int]], _ConnectionParameters]:
    """Resolves ``connect()``'s arguments with
    :func:`~ferropg.connect_utils.resolve_params` and returns ``(addresses,
    parameters)``, the parameters as a :class:`_ConnectionParameters`."""
    # The keywords are exactly resolve_params' own: taken before any other local exists.
    arguments = dict(locals())
    from .connect_utils import resolve_params

    p = resolve_params(**arguments)
    tls = p.tls
    assert tls is not None  # resolve_params always decides
    if tls.context is not None:
        ssl_view: Any = tls.context
    else:
        # False when TLS was asked about and refused; None when nothing asked for it.
        ssl_view = False if tls.asked else None
    return p.addrs, _ConnectionParameters(
        user=p.user,
        password=p.password,
        database=p.database,
        ssl=ssl_view,
        sslmode=tls.mode,
        ssl_negotiation=tls.negotiation,
        server_settings=p.server_settings or None,
        target_session_attrs=p.target_session_attrs,
        krbsrvname=p.krbsrvname,
        gsslib=p.gsslib,
    )


async def _can_use_connection(con: Connection, attr: SessionAttribute) -> bool:
    """Whether ``connect_matching`` may keep ``con``: does its server have ``attr``
    (:func:`~ferropg.connect_utils.session_matches`)."""
    from .connect_utils import session_matches

    return await session_matches(con, attr)

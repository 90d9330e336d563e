"""ferropg's blocking face: asyncpg's API without ``await``, on the same core.

::

    import ferropg.sync

    with ferropg.sync.connect("postgresql://app@db/shop") as con:
        with con.transaction():
            con.execute("INSERT INTO t VALUES ($1)", 1)
        rows = con.fetch("SELECT * FROM t WHERE id = any($1::int[])", [1, 2])

Types, codecs, :class:`~ferropg.Record` and :mod:`ferropg.exceptions` are the async
face's; so are ``connect()``'s arguments.
"""

from __future__ import annotations

from .. import exceptions
from ..protocol import Record
from .connection import Connection, Cursor, PreparedStatement, Transaction, connect
from .pool import Pool, PooledConnection, create_pool

__all__ = (
    "Connection",
    "Cursor",
    "Pool",
    "PooledConnection",
    "PreparedStatement",
    "Record",
    "Transaction",
    "connect",
    "create_pool",
    "exceptions",
)

"""ferropg's PEP 249 (DB-API 2.0) module, on the blocking face and the same core.

::

    import ferropg.dbapi

    con = ferropg.dbapi.connect("postgresql://app@db/shop")
    cur = con.cursor()
    cur.execute("INSERT INTO t (id, name) VALUES (%s, %s)", (1, "a"))
    cur.execute("SELECT name FROM t WHERE id = %(id)s", {"id": 1})
    print(cur.fetchone())
    con.commit()

Parameters (``paramstyle`` is ``pyformat``): a sequence for ``%s`` placeholders, a mapping
for ``%(name)s``; ``%%`` is a percent sign. A statement written in PostgreSQL's own style
(``$1``, ``$2``...) takes a sequence too. What tells them apart: ``%s``/``%(name)s``
outside string literals, quoted identifiers, dollar-quoted strings and comments are
placeholders; with no such placeholder and a ``$n`` outside them, the statement is in
``$n`` style (where ``%`` is the modulo operator); mixing the two is a
:class:`ProgrammingError`. Without parameters (``execute(sql)``), the text is sent as it
is. Values always travel as bound parameters, never inside the SQL text.

Server errors are raised as classes that are both PEP 249's (``IntegrityError`` for
SQLSTATE class 23...) and ferropg's SQLSTATE class (``UniqueViolationError``), with every
field of the server's error.
"""

from __future__ import annotations

from ._connection import (
    ClientCursor,
    Connection,
    Cursor,
    ServerCursor,
    connect,
    dict_row,
    record_row,
    tuple_row,
)
from ._errors import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Warning,
)
from ._types import (
    BINARY,
    DATETIME,
    NUMBER,
    ROWID,
    STRING,
    Binary,
    Date,
    DateFromTicks,
    Time,
    TimeFromTicks,
    Timestamp,
    TimestampFromTicks,
)

#: PEP 249's module globals.
apilevel = "2.0"
#: Threads may share the module, but not connections (one thread at a time uses one).
threadsafety = 1
paramstyle = "pyformat"

__all__ = (
    "BINARY",
    "Binary",
    "ClientCursor",
    "Connection",
    "Cursor",
    "DATETIME",
    "DataError",
    "DatabaseError",
    "Date",
    "DateFromTicks",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NUMBER",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "ROWID",
    "STRING",
    "ServerCursor",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "Warning",
    "apilevel",
    "connect",
    "dict_row",
    "paramstyle",
    "record_row",
    "threadsafety",
    "tuple_row",
)

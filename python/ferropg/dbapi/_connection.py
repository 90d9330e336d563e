"""PEP 249's Connection and Cursor, on a blocking :class:`ferropg.sync.Connection`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

from .. import _native, sync
from .. import exceptions as _pg
from ..sync.connection import _MISS
from . import _errors
from ._errors import InterfaceError, NotSupportedError, ProgrammingError, translated
from ._literals import literal

__all__ = (
    "ClientCursor",
    "Connection",
    "Cursor",
    "ServerCursor",
    "connect",
    "dict_row",
    "record_row",
    "tuple_row",
)


#: Rows as tuples (the default): ``tuple`` itself, so that no Python runs per row.
tuple_row = tuple


def dict_row(record: Any) -> dict:
    """Rows as dicts, keyed by column name."""
    return dict(record.items())


def record_row(record: Any) -> Any:
    """Rows as :class:`ferropg.Record` objects, as the async face returns them."""
    return record


#: Statements whose placeholder reading a connection keeps (then it starts afresh).
_PLANS_KEPT = 256

#: Command tags whose last word is the number of rows they touched.
_COUNTED = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "FETCH", "MOVE"})


def _rowcount(status: str | None) -> int:
    if not status:
        return -1
    words = status.split()
    if words[0] in _COUNTED and words[-1].isdigit():
        return int(words[-1])
    return -1


def _reraise(exc: Exception) -> NoReturn:
    """Raises ``exc``, being handled, as PEP 249's class too (inside its ``except``)."""
    new = translated(exc)
    if new is exc:
        raise exc
    new.__suppress_context__ = True
    raise new


@contextlib.contextmanager
def _translating() -> Iterator[None]:
    """ferropg's exceptions leave as PEP 249's (and still ferropg's)."""
    try:
        yield
    except Exception as exc:
        _reraise(exc)


class Connection:
    """A PEP 249 connection. Statements run inside a transaction that the first one
    opens (``BEGIN``) and :meth:`commit` or :meth:`rollback` ends, unless
    :attr:`autocommit` is true."""

    Warning = _errors.Warning
    Error = _errors.Error
    InterfaceError = _errors.InterfaceError
    DatabaseError = _errors.DatabaseError
    DataError = _errors.DataError
    OperationalError = _errors.OperationalError
    IntegrityError = _errors.IntegrityError
    InternalError = _errors.InternalError
    ProgrammingError = _errors.ProgrammingError
    NotSupportedError = _errors.NotSupportedError

    def __init__(
        self,
        con: sync.Connection,
        *,
        autocommit: bool,
        row_factory: Callable[[Any], Any],
        cursor_factory: Callable[[Connection], Cursor] | None = None,
    ) -> None:
        self._con = con
        #: The protocol's reading of ``standard_conforming_strings``, which decides what
        #: a quote or backslash means; bound once, asked on every statement.
        self._standard_strings = con._wrapped._protocol.standard_conforming_strings
        self._autocommit = bool(autocommit)
        self._closed = False
        self._plans: dict[tuple[str, bool], tuple[str, Any, bool, str | None]] = {}
        self._descriptions: dict[Any, tuple] = {}
        #: Turns each row (a Record) into what ``fetch*`` return: :func:`tuple_row`,
        #: :func:`dict_row`, :func:`record_row`, or a callable of one's own.
        self.row_factory = row_factory
        #: The class :meth:`cursor` makes: :class:`Cursor`, or :class:`ClientCursor`.
        self.cursor_factory: Callable[[Connection], Cursor] = cursor_factory or Cursor

    # ------------------------------------------------------------------ state

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (or the server went away)."""
        return self._closed or self._con.is_closed()

    @property
    def autocommit(self) -> bool:
        """Whether each statement commits on its own (no implicit transaction)."""
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        self._check()
        if bool(value) != self._autocommit and self._con.is_in_transaction():
            raise ProgrammingError(
                "cannot change autocommit inside a transaction: commit or roll back first"
            )
        self._autocommit = bool(value)

    @property
    def connection(self) -> sync.Connection:
        """The blocking :class:`ferropg.sync.Connection` underneath."""
        return self._con

    def _check(self) -> None:
        if self._closed:
            raise InterfaceError("the connection is closed")

    def _begin(self) -> None:
        """Opens the implicit transaction, unless one is open or autocommit is on."""
        if not self._autocommit and not self._con.is_in_transaction():
            self._con.execute("BEGIN")

    def _description(self, state: Any) -> tuple:
        """A cached statement's :attr:`Cursor.description` (kept per statement)."""
        description = self._descriptions.get(state)
        if description is None:
            description = tuple((c[0], c[1], None, None, None, None, None) for c in state.columns)
            if len(self._descriptions) >= _PLANS_KEPT:
                self._descriptions.clear()
            self._descriptions[state] = description
        return description

    def _plan(self, key: tuple[str, bool]) -> tuple[str, Any, bool, str | None]:
        """How the statement ``key[0]`` takes parameters when ``standard_conforming_strings``
        is ``key[1]``: its ``$n`` text, its placeholders (a count or names), whether it is
        in ``$n`` style already, and why its placeholders cannot be read (or None). Kept
        in ``_plans``: a statement repeats."""
        operation, standard_strings = key
        native = _native.has_numbered_parameters(operation, standard_strings)
        try:
            sql, names = _native.convert_placeholders(operation, standard_strings)
            plan = (sql, names, native, None)
        except _pg.InterfaceError as e:
            plan = (operation, 0, native, str(e))
        if len(self._plans) >= _PLANS_KEPT:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def _bind(self, operation: str, parameters: Any) -> tuple[str, tuple]:
        """The statement in PostgreSQL's ``$n`` style, and its arguments in order."""
        if not isinstance(operation, str):
            raise ProgrammingError(f"the statement must be a str, not {type(operation).__name__}")
        if parameters is None:
            return operation, ()
        key = (operation, self._standard_strings())
        sql, names, native, error = self._plans.get(key) or self._plan(key)
        if error is not None:
            if native:
                # $n style, where a lone % is the modulo operator.
                return operation, _as_sequence(parameters)
            raise ProgrammingError(error)
        kind = type(parameters)
        if kind is dict or (
            kind is not tuple and kind is not list and isinstance(parameters, Mapping)
        ):
            if isinstance(names, int) and names:
                raise ProgrammingError("%s placeholders take a sequence of values, not a mapping")
            try:
                return sql, tuple([parameters[name] for name in names or ()])
            except KeyError as e:
                raise ProgrammingError(f"no value given for placeholder %({e.args[0]})s") from None
        values = parameters if kind is tuple else _as_sequence(parameters)
        if names.__class__ is list:
            raise ProgrammingError("%(name)s placeholders take a mapping of values")
        if native:
            if names:
                raise ProgrammingError("a statement cannot mix %s and $n placeholders")
            return operation, values
        if names != len(values):
            raise ProgrammingError(
                f"the statement has {names} placeholders but {len(values)} values were given"
            )
        return sql, values

    # ------------------------------------------------------------------ PEP 249

    def cursor(self, name: str | None = None) -> Cursor:
        """A new cursor on this connection (of :attr:`cursor_factory`); a ``name`` makes
        it a :class:`ServerCursor`, which reads its result a piece at a time."""
        self._check()
        return self.cursor_factory(self) if name is None else ServerCursor(self, name)

    def commit(self) -> None:
        """Commits the transaction under way (nothing to do without one)."""
        self._check()
        with _translating():
            if self._con.is_in_transaction():
                self._con.execute("COMMIT")

    def rollback(self) -> None:
        """Rolls back the transaction under way (nothing to do without one)."""
        self._check()
        with _translating():
            if self._con.is_in_transaction():
                self._con.execute("ROLLBACK")

    def close(self) -> None:
        """Closes the connection; a transaction under way is rolled back by the server.
        Closing it again is an :class:`Error` (PEP 249: no operation after close)."""
        self._check()
        self._closed = True
        with _translating():
            self._con.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, extype: Any, *exc: Any) -> None:
        """Commits (or rolls back, on an exception) and closes."""
        if self._closed:
            return
        try:
            if not self._con.is_closed():
                if extype is None:
                    self.commit()
                else:
                    self.rollback()
        finally:
            if not self._closed:
                self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<ferropg.dbapi.Connection {state} at 0x{id(self):x}>"


def _as_sequence(parameters: Any) -> tuple:
    if isinstance(parameters, (str, bytes)) or not isinstance(parameters, Sequence):
        raise ProgrammingError(
            f"parameters must be a sequence or a mapping, not {type(parameters).__name__}"
        )
    return tuple(parameters)


class Cursor:
    """A PEP 249 cursor: the result of each :meth:`execute` is read in full, then
    handed out by ``fetch*``."""

    def __init__(self, connection: Connection) -> None:
        #: The connection this cursor belongs to (PEP 249 extension).
        self.connection = connection
        #: Rows :meth:`fetchmany` returns when not told how many.
        self.arraysize = 1
        self._closed = False
        self._reset()

    def _reset(self) -> None:
        self.description: tuple | None = None
        self.rowcount = -1
        self._rows: list = []
        self._pos = 0

    def _check(self) -> None:
        if self._closed:
            raise InterfaceError("the cursor is closed")
        self.connection._check()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def rownumber(self) -> int | None:
        """The index of the next row in the result (PEP 249 extension)."""
        return self._pos if self.description is not None else None

    @property
    def lastrowid(self) -> None:
        """Always None: PostgreSQL has no row id to give (use ``RETURNING``)."""
        return None

    def execute(self, operation: str, parameters: Any = None) -> Cursor:
        """Runs one statement. ``parameters``: a sequence for ``%s`` placeholders (or
        ``$1``, ``$2``...), a mapping for ``%(name)s``; without parameters the text is
        sent as it is (``%`` included) and may hold several statements."""
        connection = self.connection
        if self._closed or connection._closed:
            self._check()
        sql, args = connection._bind(operation, parameters)
        self._reset()
        try:
            if not connection._autocommit:
                connection._begin()
            self._run(sql, args, script_allowed=parameters is None)
        except Exception as exc:
            _reraise(exc)
        return self

    def _run(self, sql: str, args: tuple, *, script_allowed: bool) -> None:
        con = self.connection._con
        if script_allowed and _native.is_script(sql, self.connection._standard_strings()):
            # Several statements cannot be prepared: they run as one simple-protocol
            # script, which reports the last one's status and no rows.
            self.rowcount = _rowcount(con.execute(sql))
            return
        state = con._wrapped._protocol.cache_get(sql)
        if state is not None:
            # Cached: the blocking face's fast path, without the loop.
            wants_rows = state.returns_rows
            result = con._fast(sql, args, 0, wants_rows)
            if result is not _MISS:
                if wants_rows:
                    self.description = self.connection._descriptions.get(
                        state
                    ) or self.connection._description(state)
                    self._rows = result
                    self.rowcount = len(result)
                else:
                    self.rowcount = _rowcount(result)
                return
        stmt = con._call(con._wrapped._prepare, (sql,), {"use_cache": True})
        state = stmt._state
        rows = con._call(stmt._run, (args, 0, None, state.returns_rows), {})
        self.rowcount = _rowcount(stmt.get_statusmsg())
        if state.returns_rows:
            self.description = self.connection._description(state)
            self._rows = rows

    def executemany(self, operation: str, seq_of_parameters: Any) -> None:
        """Runs one statement once per set of parameters, in one pipelined, atomic batch."""
        self._check()
        batches = list(seq_of_parameters)
        self._reset()
        if not batches:
            return
        bound = [self.connection._bind(operation, p) for p in batches]
        sql = bound[0][0]
        with _translating():
            self.connection._begin()
            self.connection._con.executemany(sql, [args for _, args in bound])

    def callproc(self, procname: str, parameters: Sequence[Any] = ()) -> Sequence[Any]:
        """Calls a function with ``parameters``; its result is read as a query's. Returns
        ``parameters`` unchanged (PostgreSQL functions have no output-only arguments)."""
        self._check()
        name = ".".join(_native.quote_ident(part) for part in procname.split("."))
        marks = ", ".join(f"${i}" for i in range(1, len(parameters) + 1))
        self._reset()
        with _translating():
            self.connection._begin()
            self._run(f"SELECT * FROM {name}({marks})", tuple(parameters), script_allowed=False)
        return parameters

    def _take(self, n: int | None) -> list:
        self._check()
        if self.description is None:
            raise ProgrammingError("the last statement returned no rows to fetch")
        end = len(self._rows) if n is None else min(self._pos + max(n, 0), len(self._rows))
        chunk = self._rows[self._pos : end]
        self._pos = end
        factory = self.connection.row_factory
        return [factory(r) for r in chunk]

    def fetchone(self) -> Any:
        """The next row, or None after the last."""
        if self._closed or self.description is None or self.connection._closed:
            self._take(1)  # raises the error that applies
        pos = self._pos
        if pos >= len(self._rows):
            return None
        self._pos = pos + 1
        return self.connection.row_factory(self._rows[pos])

    def fetchmany(self, size: int | None = None) -> list:
        """The next ``size`` rows (default :attr:`arraysize`); fewer at the end."""
        return self._take(self.arraysize if size is None else size)

    def fetchall(self) -> list:
        """Every row left."""
        return self._take(None)

    def nextset(self) -> None:
        """Always None: a statement gives one result set at most."""
        self._check()
        return None

    def setinputsizes(self, sizes: Any) -> None:
        """Does nothing (PEP 249 allows it): parameter types come from the server."""

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        """Does nothing (PEP 249 allows it): values always arrive whole."""

    def close(self) -> None:
        """Closes the cursor; using it afterwards is an :class:`InterfaceError`."""
        self._closed = True
        self._rows = []

    def __iter__(self) -> Iterator[Any]:
        while (row := self.fetchone()) is not None:
            yield row

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class ClientCursor(Cursor):
    """A cursor that writes its parameters into the SQL text, for statements that take
    no bound parameters (``SET``, ``CREATE ... DEFAULT %s``...). Only this cursor does
    so, and only on request: values are rendered as literals by the core's quoting, safe
    under either ``standard_conforming_strings``. Everything else about it is
    :class:`Cursor`'s. Make one with ``ClientCursor(con)`` or ``connect(...,
    cursor_factory=ClientCursor)``."""

    def execute(self, operation: str, parameters: Any = None) -> ClientCursor:
        """Renders ``parameters`` into ``operation`` (``%s``, ``%(name)s``), then runs
        the text as it is."""
        self._check()
        if parameters is not None:
            operation = self.mogrify(operation, parameters)
        self._reset()
        with _translating():
            self.connection._begin()
            self._run(operation, (), script_allowed=True)
        return self

    def mogrify(self, operation: str, parameters: Any) -> str:
        """The statement as it would be sent, with the values written into it."""
        self._check()
        if isinstance(parameters, Mapping):
            literals: Any = {k: literal(v) for k, v in parameters.items()}
        else:
            literals = [literal(v) for v in _as_sequence(parameters)]
        scs = self.connection._standard_strings()
        try:
            return _native.bind_placeholders(operation, scs, literals)
        except _pg.InterfaceError as e:
            raise ProgrammingError(str(e)) from None


class ServerCursor(Cursor):
    """A named cursor: :meth:`execute` opens a portal on the server, and ``fetch*`` read
    it ``n`` rows at a time, so a result larger than memory can be read through it
    (:meth:`fetchall` and iteration read :attr:`itersize` rows per round trip). A portal
    lives inside a transaction: with :attr:`Connection.autocommit` on, executing is a
    :class:`ProgrammingError`."""

    def __init__(self, connection: Connection, name: str) -> None:
        super().__init__(connection)
        #: The name given to :meth:`Connection.cursor`.
        self.name = name
        #: Rows read per round trip by :meth:`fetchall` and iteration.
        self.itersize = 1000
        self._portal: Any = None

    def execute(self, operation: str, parameters: Any = None) -> ServerCursor:
        """Opens a portal over the statement's rows (nothing is read yet)."""
        self._check()
        if self.connection.autocommit:
            raise ProgrammingError(
                "a named cursor needs a transaction: turn autocommit off to use one"
            )
        sql, args = self.connection._bind(operation, parameters)
        self._reset()
        self._portal = None
        with _translating():
            self.connection._begin()
            portal = self.connection._con.cursor(sql, *args)
            columns = portal._open()._state.columns
        self._portal = portal
        self.description = tuple((c[0], c[1], None, None, None, None, None) for c in columns)
        return self

    def fetchone(self) -> Any:
        """The next row, or None after the last (one round trip)."""
        rows = self._take(1)
        return rows[0] if rows else None

    def executemany(self, operation: str, seq_of_parameters: Any) -> None:
        """Not for a named cursor: use a plain one."""
        raise NotSupportedError("executemany() is not available on a named cursor")

    def _take(self, n: int | None) -> list:
        self._check()
        if self._portal is None or not self.description:
            raise ProgrammingError("the last statement returned no rows to fetch")
        rows: list = []
        with _translating():
            if n is None:
                while chunk := self._portal.fetch(max(self.itersize, 1)):
                    rows.extend(chunk)
            elif n > 0:
                rows = self._portal.fetch(n)
        self._pos += len(rows)
        self.rowcount = self._pos
        factory = self.connection.row_factory
        return [factory(r) for r in rows]

    def __iter__(self) -> Iterator[Any]:
        while rows := self._take(self.itersize):
            yield from rows

    def close(self) -> None:
        """Closes the cursor (the server closes the portal with the transaction)."""
        self._portal = None
        super().close()


def connect(
    dsn: str | None = None,
    *,
    autocommit: bool = False,
    row_factory: Callable[[Any], Any] = tuple_row,
    cursor_factory: Callable[[Connection], Cursor] | None = None,
    **kwargs: Any,
) -> Connection:
    """Connects to a PostgreSQL server. The arguments are :func:`ferropg.connect`'s (DSN,
    keywords, ``PG*`` variables, TLS...), plus ``autocommit``, ``row_factory`` and
    ``cursor_factory``."""
    with _translating():
        con = sync.connect(dsn, **kwargs)
    return Connection(
        con, autocommit=autocommit, row_factory=row_factory, cursor_factory=cursor_factory
    )

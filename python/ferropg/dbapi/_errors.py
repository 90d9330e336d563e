"""PEP 249's exception classes, and how ferropg's exceptions become them.

A server error is raised as an instance of a class that derives from both its ferropg
SQLSTATE class (``UniqueViolationError``...) and the DB-API class for its SQLSTATE class
(``IntegrityError`` for 23xxx...), with every field kept: ``except IntegrityError`` and
``except UniqueViolationError`` both catch it, and ``e.sqlstate``, ``e.detail``,
``e.constraint_name`` are there.
"""

from __future__ import annotations

import builtins
from typing import Any

from .. import exceptions as _pg

__all__ = (
    "DataError",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "Warning",
    "translated",
)


class Warning(builtins.Warning):  # noqa: A001 - PEP 249's name
    """Important warnings, such as data truncation (PEP 249)."""


class Error(Exception):
    """The base class of every other error of this module (PEP 249)."""

    @property
    def pgcode(self) -> str | None:
        """A server error's SQLSTATE (None for others): psycopg's name for ``sqlstate``,
        which SQLAlchemy and other libraries read."""
        return getattr(self, "sqlstate", None)


class InterfaceError(Error):
    """An error of the driver's interface rather than of the database (PEP 249)."""


class DatabaseError(Error):
    """An error of the database (PEP 249)."""


class DataError(DatabaseError):
    """A problem with the data: a value out of range, a division by zero (PEP 249)."""


class OperationalError(DatabaseError):
    """A problem with the database's operation, not necessarily the program's: a lost
    connection, a deadlock, an out-of-memory server (PEP 249)."""


class IntegrityError(DatabaseError):
    """A constraint was violated (PEP 249)."""


class InternalError(DatabaseError):
    """The database hit an internal error, such as a transaction out of sync (PEP 249)."""


class ProgrammingError(DatabaseError):
    """A programming error: a missing table, an SQL syntax error, wrong parameters
    (PEP 249)."""


class NotSupportedError(DatabaseError):
    """A method or API the database does not support (PEP 249)."""


#: The DB-API class of each SQLSTATE class (the first two characters).
_BY_SQLSTATE_CLASS: dict[str, type[Error]] = {
    "08": OperationalError,  # connection exception
    "0A": NotSupportedError,  # feature not supported
    "21": ProgrammingError,  # cardinality violation
    "22": DataError,  # data exception
    "23": IntegrityError,  # integrity constraint violation
    "24": InternalError,  # invalid cursor state
    "25": InternalError,  # invalid transaction state
    "26": ProgrammingError,  # invalid SQL statement name
    "27": OperationalError,  # triggered data change violation
    "28": OperationalError,  # invalid authorization specification
    "2B": InternalError,  # dependent privilege descriptors still exist
    "2D": InternalError,  # invalid transaction termination
    "2F": InternalError,  # SQL routine exception
    "34": ProgrammingError,  # invalid cursor name
    "38": InternalError,  # external routine exception
    "39": InternalError,  # external routine invocation exception
    "3B": InternalError,  # savepoint exception
    "3D": ProgrammingError,  # invalid catalog name
    "3F": ProgrammingError,  # invalid schema name
    "40": OperationalError,  # transaction rollback (serialization failure, deadlock)
    "42": ProgrammingError,  # syntax error or access rule violation
    "44": ProgrammingError,  # WITH CHECK OPTION violation
    "53": OperationalError,  # insufficient resources
    "54": OperationalError,  # program limit exceeded
    "55": OperationalError,  # object not in prerequisite state
    "57": OperationalError,  # operator intervention
    "58": OperationalError,  # system error
    "72": OperationalError,  # snapshot failure
    "F0": OperationalError,  # configuration file error
    "HV": OperationalError,  # foreign data wrapper error
    "P0": InternalError,  # PL/pgSQL error
    "XX": InternalError,  # internal error
}

_combined: dict[tuple[type, type], type] = {}


def _both(source: type[BaseException], target: type[Error]) -> type:
    """A class that is both ``source`` (ferropg's) and ``target`` (PEP 249's)."""
    key = (source, target)
    cls = _combined.get(key)
    if cls is None:
        cls = type(source.__name__, (source, target), {"__module__": __name__})
        cls.__qualname__ = source.__qualname__
        _combined[key] = cls
    return cls


def _target(exc: BaseException) -> type[Error] | None:
    if isinstance(exc, Error):
        return None
    if isinstance(exc, _pg.PostgresError):
        code = getattr(exc, "sqlstate", None) or ""
        return _BY_SQLSTATE_CLASS.get(code[:2], DatabaseError)
    if isinstance(exc, _pg.DataError):
        return DataError
    if isinstance(exc, (_pg.ConnectionDoesNotExistError, ConnectionError, TimeoutError, OSError)):
        return OperationalError
    if isinstance(exc, _pg.InterfaceError):
        return InterfaceError
    if isinstance(exc, (_pg.ProtocolError, _pg.InternalClientError)):
        return InternalError
    return None


def translated(exc: BaseException) -> BaseException:
    """``exc`` as an instance of its class and of the PEP 249 class that fits it (the
    same object when it already is one, or when none fits: a KeyboardInterrupt stays
    one)."""
    target = _target(exc)
    if target is None:
        return exc
    cls = _both(type(exc), target)
    new: Any = cls.__new__(cls, *exc.args)
    new.__dict__.update(getattr(exc, "__dict__", {}))
    new.__cause__, new.__context__ = exc.__cause__, exc.__context__
    new.__suppress_context__ = exc.__suppress_context__
    return new.with_traceback(exc.__traceback__)

"""Base classes of ferropg's exceptions, and the constructors the native layer calls.

The per-SQLSTATE classes live in the generated ``ferropg.exceptions`` package module; this
module holds the classes they derive from and the client-side errors, with the names, bases
and behaviour of asyncpg 0.32's ``asyncpg.exceptions._base``.

The native layer turns a server ErrorResponse into an exception with :func:`error_from_fields`
and a NoticeResponse into a log message with :func:`message_from_fields`. Both take the message's
fields keyed by their one-character wire codes (``'C'`` for the SQLSTATE, ``'M'`` for the
message, and so on).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

__all__ = (
    "ClientConfigurationError",
    "FatalPostgresError",
    "InterfaceError",
    "InterfaceWarning",
    "InternalClientError",
    "OutdatedSchemaCacheError",
    "PostgresError",
    "PostgresLogMessage",
    "ProtocolError",
    "TargetServerAttributeNotMatched",
    "UnknownPostgresError",
    "UnsupportedClientFeatureError",
    "UnsupportedServerFeatureError",
)

# ErrorResponse/NoticeResponse field code -> attribute name.
# https://www.postgresql.org/docs/current/protocol-error-fields.html
_FIELD_NAMES: dict[str, str] = {
    "S": "severity",
    "V": "severity_en",
    "C": "sqlstate",
    "M": "message",
    "D": "detail",
    "H": "hint",
    "P": "position",
    "p": "internal_position",
    "q": "internal_query",
    "W": "context",
    "s": "schema_name",
    "t": "table_name",
    "c": "column_name",
    "d": "data_type_name",
    "n": "constraint_name",
    "F": "server_source_filename",
    "L": "server_source_line",
    "R": "server_source_function",
}

# The text of an error the core recognises as a stale cached plan (see _resolve).
_INVALID_CACHED_STATEMENT_MESSAGE = (
    "cached statement plan is invalid due to a database schema or configuration change"
)
_PREPARED_STATEMENT_CODES = frozenset({"42P05", "26000"})

_PGBOUNCER_NOTE = """\
NOTE: pgbouncer in transaction mode (like any transaction-mode pooler) may run
each transaction in another server session, where a prepared statement is missing
or already there. ferropg notices it on its own statements and switches the
connection, and its pool, to binding every statement unnamed, as
statement_cache_size=0 does: no setting is needed. A call that failed outside a
transaction block has been run again; inside one the transaction is aborted, so
run the transaction again."""


class PostgresMessageMeta(type):
    """Metaclass of server messages: keeps the SQLSTATE -> class registry.

    Every class whose body sets ``sqlstate`` is registered under that code; registering a
    code twice raises :exc:`TypeError`.
    """

    _message_map: ClassVar[dict[str, type]] = {}

    def __new__(
        mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> PostgresMessageMeta:
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        code = namespace.get("sqlstate")
        if code is not None:
            existing = mcls._message_map.get(code)
            if existing is not None:
                raise TypeError(
                    f"{name} has duplicate SQLSTATE code {code}, "
                    f"which is already defined by {existing.__name__}"
                )
            mcls._message_map[code] = cls
        return cls

    @classmethod
    def get_message_class_for_sqlstate(cls, code: str | None) -> type:
        """The class registered for ``code``, or :class:`UnknownPostgresError`."""
        if code is None:
            return UnknownPostgresError
        return cls._message_map.get(code, UnknownPostgresError)


class PostgresMessage(metaclass=PostgresMessageMeta):
    """Base of everything the server reports: errors and log messages.

    Each field of the server message is an attribute holding the field's text, or ``None``
    when the server did not send it.
    """

    severity: str | None = None
    severity_en: str | None = None
    sqlstate: str | None = None
    message: str | None = None
    detail: str | None = None
    hint: str | None = None
    position: str | None = None
    internal_position: str | None = None
    internal_query: str | None = None
    context: str | None = None
    schema_name: str | None = None
    table_name: str | None = None
    column_name: str | None = None
    data_type_name: str | None = None
    constraint_name: str | None = None
    server_source_filename: str | None = None
    server_source_line: str | None = None
    server_source_function: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The message's fields that are set, by attribute name."""
        fields = {}
        for name in _FIELD_NAMES.values():
            value = getattr(self, name)
            if value is not None:
                fields[name] = value
        return fields


def _with_detail_and_hint(text: str, detail: str | None, hint: str | None) -> str:
    if detail:
        text += f"\nDETAIL:  {detail}"
    if hint:
        text += f"\nHINT:  {hint}"
    return text


class PostgresError(PostgresMessage, Exception):
    """Raised for an error the server reported; every SQLSTATE class derives from it."""

    def __str__(self) -> str:
        text = str(self.args[0]) if self.args else ""
        return _with_detail_and_hint(text, self.detail, self.hint)

    @classmethod
    def new(cls, fields: dict[str, str], query: str | None = None) -> PostgresMessage:
        """asyncpg's spelling of :func:`error_from_fields`; the class is chosen by SQLSTATE."""
        return error_from_fields(fields, query)


class FatalPostgresError(PostgresError):
    """A server error that ends the session: the server closes the connection after it."""


class UnknownPostgresError(FatalPostgresError):
    """A server error whose SQLSTATE has no class of its own here."""


class InterfaceMessage:
    """Mixin for client-side errors and warnings: optional ``detail`` and ``hint``.

    It cooperates with the exception or warning class it is mixed with: positional
    arguments (the message) go on to that class.
    """

    args: tuple[Any, ...]

    def __init__(self, *args: Any, detail: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args)
        self.detail = detail
        self.hint = hint

    def __str__(self) -> str:
        text = str(self.args[0]) if self.args else ""
        return _with_detail_and_hint(text, self.detail, self.hint)


class InterfaceError(InterfaceMessage, Exception):
    """Raised when the client is used wrongly: a bad argument, a closed connection, a
    call that the object's state does not allow."""

    def __init__(self, msg: str, *, detail: str | None = None, hint: str | None = None) -> None:
        super().__init__(msg, detail=detail, hint=hint)

    def with_msg(self, msg: str) -> InterfaceError:
        """A copy of this error with another message, keeping detail, hint and traceback."""
        copy = type(self)(msg, detail=self.detail, hint=self.hint)
        return copy.with_traceback(self.__traceback__)


class ClientConfigurationError(InterfaceError, ValueError):
    """Raised for connection settings that the client cannot use as given."""


class DataError(InterfaceError, ValueError):
    """Raised for a query argument that cannot be sent as the parameter's type.

    Not exported: ``ferropg.exceptions.DataError`` is the SQLSTATE 22000 class, which is
    what the client raises for query arguments it cannot encode.
    """


class UnsupportedClientFeatureError(InterfaceError):
    """Raised when a request needs something that ferropg does not implement."""


class UnsupportedServerFeatureError(InterfaceError):
    """Raised when a request needs something that the connected server does not offer."""


class InterfaceWarning(InterfaceMessage, UserWarning):
    """Warns about a use of the client that works but is probably a mistake."""

    def __init__(self, msg: str, *, detail: str | None = None, hint: str | None = None) -> None:
        super().__init__(msg, detail=detail, hint=hint)


class InternalClientError(Exception):
    """Something went wrong inside the client itself, and no other class describes it."""


class ProtocolError(InternalClientError):
    """The server sent something that the protocol handling did not expect."""


class TargetServerAttributeNotMatched(InternalClientError):
    """None of the hosts tried has the session attributes ``target_session_attrs`` asks for."""


class OutdatedSchemaCacheError(InternalClientError):
    """A value could not be decoded because its type changed after the statement was
    prepared: the cached description of the result is out of date."""

    def __init__(
        self,
        msg: str,
        *,
        schema: str | None = None,
        data_type: str | None = None,
        position: str | None = None,
    ) -> None:
        super().__init__(msg)
        # Where the stale type is: its schema, its name and the column it was found in.
        self.schema_name, self.data_type_name, self.position = schema, data_type, position


class PostgresLogMessage(PostgresMessage):
    """What the server reports without failing (NOTICE, WARNING, ...), as handed to log
    listeners.  Instances are immutable.
    """

    def __str__(self) -> str:
        return f"{type(self).__name__}: {self.message}"

    def __setattr__(self, name: str, value: object) -> None:
        raise TypeError(f"instances of {type(self).__name__} are immutable")

    @classmethod
    def new(cls, fields: dict[str, str], query: str | None = None) -> PostgresMessage:
        """asyncpg's spelling of :func:`message_from_fields`."""
        return message_from_fields(fields, query)


def _pgbouncer_hint(hint: str | None) -> str:
    """``hint`` with the note about pgbouncer and prepared statements appended.

    asyncpg adds this note to every 42P05 (duplicate_prepared_statement) and 26000
    (invalid_sql_statement_name) error, whatever the statement cache setting, and its test
    suite checks for it (test_prepare_31_pgbouncer_note), so :func:`_resolve` always applies it
    for those two codes.
    """
    if hint:
        return f"{hint}\n\n{_PGBOUNCER_NOTE}"
    return _PGBOUNCER_NOTE


def _resolve(
    fields: dict[str, str], query: str | None, *, class_fallback: bool, stale_plan: bool = False
) -> tuple[type, str, dict[str, Any]]:
    """The class, the message text and the instance attributes for a server message.

    With ``class_fallback``, an unregistered SQLSTATE maps to the class of its first two
    characters (``'22P99'`` -> ``DataError``) before falling back to ``UnknownPostgresError``.
    """
    attrs: dict[str, Any] = {"query": query}
    for key, value in fields.items():
        name = _FIELD_NAMES.get(key)
        if name is not None:
            attrs[name] = value

    code = attrs.get("sqlstate")
    registry = PostgresMessageMeta._message_map
    cls = registry.get(code) if code is not None else None
    if cls is None and class_fallback and code is not None and len(code) == 5:
        cls = registry.get(code[:2] + "000")
    if cls is None:
        cls = UnknownPostgresError

    message = attrs.get("message", "")

    # A prepared statement whose result row type changed after it was prepared (the
    # core's rule, DbError::is_stale_plan, tells it by SQLSTATE and routine, never by the
    # localizable message) gets a class of its own that callers can catch: the connection
    # retries once on it.
    if stale_plan:
        from . import InvalidCachedStatementError

        cls = InvalidCachedStatementError
        message = _INVALID_CACHED_STATEMENT_MESSAGE

    if code in _PREPARED_STATEMENT_CODES:
        attrs["hint"] = _pgbouncer_hint(attrs.get("hint"))

    return cls, message, attrs


def error_from_fields(
    fields: dict[str, str], query: str | None = None, *, stale_plan: bool = False
) -> PostgresMessage:
    """Build the exception for a server ErrorResponse.

    ``fields`` maps the response's one-character field codes to their text (``'C'`` the
    SQLSTATE, ``'M'`` the message, ``'D'`` detail, ...); unknown codes are ignored. ``query`` is
    the text of the query that failed; it becomes the ``query`` attribute.

    The class is the one registered for the SQLSTATE; an unregistered code gets the class of
    its first two characters if there is one, else :class:`UnknownPostgresError`. An error
    the native layer flags as a stale cached plan (``stale_plan``) becomes
    ``InvalidCachedStatementError``. Errors 42P05 and 26000 get a note about pgbouncer
    appended to ``hint``.

    The result is a :class:`PostgresError`, except for warning-class SQLSTATEs (01xxx, 02xxx),
    which give a ``PostgresWarning`` as in asyncpg (an ``Exception``, but immutable).
    """
    cls, message, attrs = _resolve(fields, query, class_fallback=True, stale_plan=stale_plan)
    if attrs.get("sqlstate") == "42601" and query:
        hint = _in_parameter_hint(query, attrs.get("position"))
        if hint is not None:
            attrs["hint"] = hint if not attrs.get("hint") else attrs["hint"] + "\n" + hint
    exc = cls(message)
    # Bypass __setattr__: PostgresLogMessage subclasses (warnings) are immutable.
    exc.__dict__.update(attrs)
    return exc


_IN_PARAM = re.compile(r"\bIN\s*\(?\s*$", re.IGNORECASE)
_PARAM_AT = re.compile(r"\$(\d+)")


def _in_parameter_hint(query: str, position: str | None) -> str | None:
    """A hint for ``expr IN $1``, which PostgreSQL cannot parse, pointing to ``= any()``.

    Found from the error position and the query text, never from the (localised) message.
    """
    try:
        at = int(position) - 1 if position else -1
    except ValueError:
        return None
    if not 0 <= at < len(query):
        return None
    m = _PARAM_AT.match(query, at)
    if m is None or not _IN_PARAM.search(query[:at]):
        return None
    n = m.group(1)
    return (
        f"IN does not take a parameter as its list: write `expr = any(${n}::type[])` "
        f"and pass a list, e.g. `WHERE id = any(${n}::int[])`"
    )


def message_from_fields(fields: dict[str, str], query: str | None = None) -> PostgresMessage:
    """Build the log message for a server NoticeResponse (NOTICE, WARNING, ...).

    ``fields`` is keyed as for :func:`error_from_fields`; ``query`` is the text of the last
    query sent, if any. The class is the one registered for the exact SQLSTATE, so a notice
    can be an instance of a PostgresError subclass (``CREATE TABLE IF NOT EXISTS`` on an
    existing table sends 42P07, giving ``DuplicateTableError``). An unregistered SQLSTATE gives
    :class:`PostgresLogMessage`, or ``PostgresWarning`` when the severity is WARNING.
    """
    cls, message, attrs = _resolve(fields, query, class_fallback=False)

    if cls is UnknownPostgresError:
        cls = PostgresLogMessage
    if cls is PostgresLogMessage:
        severity = attrs.get("severity_en") or attrs.get("severity")
        if severity and severity.upper() == "WARNING":
            from . import PostgresWarning

            cls = PostgresWarning

    msg = cls(message) if issubclass(cls, BaseException) else cls()
    msg.__dict__.update(attrs)
    return msg

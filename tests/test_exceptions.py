"""ferropg.exceptions: asyncpg 0.32's exception names, hierarchy and construction from fields.

No server needed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from ferropg import exceptions
from ferropg.exceptions import _base

ROOT = Path(__file__).resolve().parent.parent
ASYNCPG_ALL = ROOT / "tests" / "data" / "asyncpg_exceptions_all.txt"

# Every ErrorResponse field code, a value for it, and the attribute it must land in.
ALL_FIELDS = {
    "S": ("ERREUR", "severity"),
    "V": ("ERROR", "severity_en"),
    "C": ("23505", "sqlstate"),
    "M": ('duplicate key value violates unique constraint "t_pkey"', "message"),
    "D": ("Key (id)=(1) already exists.", "detail"),
    "H": ("Use another key.", "hint"),
    "P": ("15", "position"),
    "p": ("3", "internal_position"),
    "q": ("SELECT 1", "internal_query"),
    "W": ("PL/pgSQL function f() line 3 at SQL statement", "context"),
    "s": ("public", "schema_name"),
    "t": ("t", "table_name"),
    "c": ("id", "column_name"),
    "d": ("int4", "data_type_name"),
    "n": ("t_pkey", "constraint_name"),
    "F": ("nbtinsert.c", "server_source_filename"),
    "L": ("666", "server_source_line"),
    "R": ("_bt_check_unique", "server_source_function"),
}


def asyncpg_names() -> list[str]:
    lines = ASYNCPG_ALL.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def sqlstate_classes() -> list[type]:
    return [
        getattr(exceptions, name)
        for name in exceptions.__all__
        if "sqlstate" in vars(getattr(exceptions, name))
    ]


# --- exported names ---------------------------------------------------------------------------


def test_all_is_asyncpgs_276_names() -> None:
    expected = asyncpg_names()
    assert len(expected) == 276
    assert len(exceptions.__all__) == len(set(exceptions.__all__))
    assert sorted(exceptions.__all__) == sorted(expected)


def test_all_is_a_tuple_of_bound_names() -> None:
    # asyncpg's top level concatenates tuples: ('connect', ...) + exceptions.__all__.
    assert isinstance(exceptions.__all__, tuple)
    for name in exceptions.__all__:
        assert isinstance(getattr(exceptions, name), type), name


def test_postgres_message_is_not_exported() -> None:
    assert "PostgresMessage" not in exceptions.__all__
    assert not hasattr(exceptions, "PostgresMessage")
    assert "DataError" not in _base.__all__


def test_constructors_are_importable_but_not_in_all() -> None:
    assert exceptions.error_from_fields is _base.error_from_fields
    assert exceptions.message_from_fields is _base.message_from_fields
    assert "error_from_fields" not in exceptions.__all__
    assert "message_from_fields" not in exceptions.__all__


# --- hierarchy --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "bases", "sqlstate"),
    [
        ("PostgresWarning", ("PostgresLogMessage", "Warning"), "01000"),
        ("StringDataRightTruncation", ("PostgresWarning",), "01004"),
        ("NoData", ("PostgresWarning",), "02000"),
        ("NoAdditionalDynamicResultSetsReturned", ("NoData",), "02001"),
        ("PostgresConnectionError", ("PostgresError",), "08000"),
        ("ClientCannotConnectError", ("PostgresConnectionError",), "08001"),
        ("ConnectionDoesNotExistError", ("PostgresConnectionError",), "08003"),
        ("ConnectionRejectionError", ("PostgresConnectionError",), "08004"),
        ("ConnectionFailureError", ("PostgresConnectionError",), "08006"),
        ("FeatureNotSupportedError", ("PostgresError",), "0A000"),
        ("InvalidArgumentForXqueryError", ("PostgresError",), "10608"),
        ("DataError", ("PostgresError",), "22000"),
        ("StringDataRightTruncationError", ("DataError",), "22001"),
        ("NullValueNotAllowedError", ("DataError",), "22004"),
        ("PostgresFloatingPointError", ("DataError",), "22P01"),
        ("UniqueViolationError", ("IntegrityConstraintViolationError",), "23505"),
        ("TransactionTimeoutError", ("InvalidTransactionStateError",), "25P04"),
        ("ModifyingSQLDataNotPermittedError", ("SQLRoutineError",), "2F002"),
        ("ModifyingExternalRoutineSQLDataNotPermittedError", ("ExternalRoutineError",), "38002"),
        (
            "NullValueInExternalRoutineNotAllowedError",
            ("ExternalRoutineInvocationError",),
            "39004",
        ),
        ("SerializationError", ("TransactionRollbackError",), "40001"),
        ("SyntaxOrAccessError", ("PostgresError",), "42000"),
        ("PostgresSyntaxError", ("SyntaxOrAccessError",), "42601"),
        ("UndefinedTableError", ("SyntaxOrAccessError",), "42P01"),
        ("PostgresSystemError", ("PostgresError",), "58000"),
        ("PostgresIOError", ("PostgresSystemError",), "58030"),
        ("FileNameTooLongError", ("PostgresSystemError",), "58P03"),
        ("FDWError", ("PostgresError",), "HV000"),
        ("PLPGSQLError", ("PostgresError",), "P0000"),
        ("RaiseError", ("PLPGSQLError",), "P0001"),
        ("InternalServerError", ("PostgresError",), "XX000"),
    ],
)
def test_sqlstate_class(name: str, bases: tuple[str, ...], sqlstate: str) -> None:
    cls = getattr(exceptions, name)
    assert tuple(b.__name__ for b in cls.__bases__) == bases
    assert vars(cls)["sqlstate"] == sqlstate


@pytest.mark.parametrize(
    ("name", "bases"),
    [
        ("PostgresError", ("PostgresMessage", "Exception")),
        ("FatalPostgresError", ("PostgresError",)),
        ("UnknownPostgresError", ("FatalPostgresError",)),
        ("PostgresLogMessage", ("PostgresMessage",)),
        ("InterfaceError", ("InterfaceMessage", "Exception")),
        ("InterfaceWarning", ("InterfaceMessage", "UserWarning")),
        ("ClientConfigurationError", ("InterfaceError", "ValueError")),
        ("UnsupportedClientFeatureError", ("InterfaceError",)),
        ("UnsupportedServerFeatureError", ("InterfaceError",)),
        ("InternalClientError", ("Exception",)),
        ("ProtocolError", ("InternalClientError",)),
        ("TargetServerAttributeNotMatched", ("InternalClientError",)),
        ("OutdatedSchemaCacheError", ("InternalClientError",)),
        ("InvalidCachedStatementError", ("FeatureNotSupportedError",)),
    ],
)
def test_base_class(name: str, bases: tuple[str, ...]) -> None:
    cls = getattr(exceptions, name)
    assert tuple(b.__name__ for b in cls.__bases__) == bases
    assert "sqlstate" not in vars(cls)


def test_client_data_error_is_not_the_sqlstate_class() -> None:
    assert issubclass(_base.DataError, exceptions.InterfaceError)
    assert issubclass(_base.DataError, ValueError)
    assert _base.DataError is not exceptions.DataError
    assert not issubclass(exceptions.DataError, exceptions.InterfaceError)


def test_every_code_derives_from_its_class() -> None:
    classes = sqlstate_classes()
    assert len(classes) == 262
    by_code = {cls.sqlstate: cls for cls in classes}
    assert len(by_code) == len(classes)
    for code, cls in by_code.items():
        parent = by_code.get(code[:2] + "000")
        if parent is not None and parent is not cls:
            assert cls.__bases__ == (parent,), code
        elif code[:2] in ("01", "02"):
            assert issubclass(cls, exceptions.PostgresWarning), code
        else:
            assert cls.__bases__ == (exceptions.PostgresError,), code


def test_registry_maps_codes_to_classes() -> None:
    meta = type(exceptions.PostgresError)
    for cls in sqlstate_classes():
        assert meta.get_message_class_for_sqlstate(cls.sqlstate) is cls
    assert meta.get_message_class_for_sqlstate("ZZ999") is exceptions.UnknownPostgresError
    assert meta.get_message_class_for_sqlstate(None) is exceptions.UnknownPostgresError


def test_duplicate_sqlstate_is_rejected() -> None:
    with pytest.raises(TypeError, match="duplicate SQLSTATE"):

        class Again(exceptions.UniqueViolationError):
            sqlstate = "23505"


def test_field_defaults_are_none() -> None:
    assert exceptions.PostgresError.schema_name is None
    err = exceptions.UniqueViolationError("boom")
    assert err.detail is None
    assert err.sqlstate == "23505"
    assert err.as_dict() == {"sqlstate": "23505"}
    assert str(err) == "boom"


# --- error_from_fields ------------------------------------------------------------------------


def test_error_from_fields_maps_every_field() -> None:
    fields = {code: value for code, (value, _) in ALL_FIELDS.items()}
    fields["Z"] = "an unknown field code is ignored"
    err = exceptions.error_from_fields(fields, query="INSERT INTO t VALUES (1)")

    assert type(err) is exceptions.UniqueViolationError
    for value, attribute in ALL_FIELDS.values():
        assert getattr(err, attribute) == value, attribute
    assert err.as_dict() == {attribute: value for value, attribute in ALL_FIELDS.values()}
    assert err.query == "INSERT INTO t VALUES (1)"
    assert err.args == (ALL_FIELDS["M"][0],)


def test_error_from_fields_leaves_absent_fields_none() -> None:
    err = exceptions.error_from_fields({"S": "ERROR", "C": "42P01", "M": "no such table"})
    assert type(err) is exceptions.UndefinedTableError
    assert err.detail is None
    assert err.position is None
    assert err.server_source_function is None
    assert err.query is None
    assert err.as_dict() == {"severity": "ERROR", "sqlstate": "42P01", "message": "no such table"}


def test_error_without_message_has_empty_text() -> None:
    err = exceptions.error_from_fields({"C": "42P01"})
    assert err.args == ("",)
    assert str(err) == ""


def test_str_appends_detail_and_hint() -> None:
    base = {"S": "ERROR", "C": "42P13", "M": "return type mismatch"}
    full = exceptions.error_from_fields({**base, "D": "Final statement.", "H": "Fix it."})
    assert str(full) == "return type mismatch\nDETAIL:  Final statement.\nHINT:  Fix it."
    detail_only = exceptions.error_from_fields({**base, "D": "Final statement."})
    assert str(detail_only) == "return type mismatch\nDETAIL:  Final statement."
    hint_only = exceptions.error_from_fields({**base, "H": "Fix it."})
    assert str(hint_only) == "return type mismatch\nHINT:  Fix it."
    assert str(exceptions.error_from_fields(base)) == "return type mismatch"


def test_new_is_error_from_fields() -> None:
    err = exceptions.PostgresError.new({"C": "40P01", "M": "deadlock"}, query="UPDATE t")
    assert type(err) is exceptions.DeadlockDetectedError
    assert err.query == "UPDATE t"
    # The class is picked by SQLSTATE, whichever class `new` is called on.
    assert type(exceptions.UniqueViolationError.new({"C": "42601"})) is (
        exceptions.PostgresSyntaxError
    )


def test_fatal_severity_keeps_the_sqlstate_class() -> None:
    # asyncpg 0.32 picks the class by SQLSTATE only; severity FATAL or PANIC changes nothing.
    fields = {"S": "FATAL", "V": "FATAL", "C": "57P01", "M": "terminating connection"}
    err = exceptions.error_from_fields(fields)
    assert type(err) is exceptions.AdminShutdownError
    assert not isinstance(err, exceptions.FatalPostgresError)
    assert err.severity_en == "FATAL"
    assert issubclass(exceptions.UnknownPostgresError, exceptions.FatalPostgresError)


def test_invalid_cached_statement() -> None:
    fields = {
        "S": "ERROR",
        "C": "0A000",
        "M": "cached plan must not change result type",
        "R": "RevalidateCachedQuery",
    }
    # Whether a plan went stale is the core's rule (DbError::is_stale_plan: SQLSTATE
    # 0A000 from RevalidateCachedQuery); the native layer passes its verdict.
    plain = exceptions.error_from_fields(fields, query="SELECT * FROM tab1")
    assert type(plain) is exceptions.FeatureNotSupportedError
    err = exceptions.error_from_fields(fields, query="SELECT * FROM tab1", stale_plan=True)
    assert type(err) is exceptions.InvalidCachedStatementError
    assert isinstance(err, exceptions.FeatureNotSupportedError)
    assert err.args == (
        "cached statement plan is invalid due to a database schema or configuration change",
    )
    # The fields keep what the server sent.
    assert err.message == "cached plan must not change result type"
    assert err.sqlstate == "0A000"
    assert err.query == "SELECT * FROM tab1"


def test_feature_not_supported_from_another_routine_is_not_remapped() -> None:
    err = exceptions.error_from_fields({"C": "0A000", "M": "nope", "R": "transformStmt"})
    assert type(err) is exceptions.FeatureNotSupportedError
    assert err.args == ("nope",)
    other = exceptions.error_from_fields({"C": "42804", "R": "RevalidateCachedQuery"})
    assert type(other) is exceptions.DatatypeMismatchError


@pytest.mark.parametrize(
    ("code", "cls_name"),
    [("42P05", "DuplicatePreparedStatementError"), ("26000", "InvalidSQLStatementNameError")],
)
def test_prepared_statement_errors_mention_pgbouncer(code: str, cls_name: str) -> None:
    err = exceptions.error_from_fields({"C": code, "M": "statement trouble"})
    assert type(err) is getattr(exceptions, cls_name)
    assert "pgbouncer" in err.hint
    assert "statement_cache_size" in err.hint
    assert "HINT:  NOTE: pgbouncer" in str(err)

    with_hint = exceptions.error_from_fields({"C": code, "M": "x", "H": "Server hint."})
    assert with_hint.hint.startswith("Server hint.\n")
    assert "pgbouncer" in with_hint.hint


def test_other_errors_get_no_pgbouncer_note() -> None:
    err = exceptions.error_from_fields({"C": "42P06", "M": "schema exists", "H": "h"})
    assert err.hint == "h"


def test_pgbouncer_hint_helper() -> None:
    assert _base._pgbouncer_hint(None).startswith("NOTE: pgbouncer")
    assert _base._pgbouncer_hint("").startswith("NOTE: pgbouncer")
    assert _base._pgbouncer_hint("mine").startswith("mine\n\nNOTE: pgbouncer")


@pytest.mark.parametrize(
    ("fields", "cls_name"),
    [
        ({"C": "22P99", "M": "new data error"}, "DataError"),
        ({"C": "42P99", "M": "new syntax error"}, "SyntaxOrAccessError"),
        (
            {"C": "0AP99", "M": "new unsupported", "R": "RevalidateCachedQuery"},
            "FeatureNotSupportedError",
        ),
        ({"C": "42Q05", "M": "no pgbouncer note"}, "SyntaxOrAccessError"),
        ({"C": "ZZ999", "M": "unknown class"}, "UnknownPostgresError"),
        ({"C": "10999", "M": "class without a class-level code"}, "UnknownPostgresError"),
        ({"C": "00000", "M": "success is no error class"}, "UnknownPostgresError"),
        ({"C": "22", "M": "malformed"}, "UnknownPostgresError"),
        ({"M": "no code at all"}, "UnknownPostgresError"),
    ],
)
def test_unknown_code_fallback(fields: dict[str, str], cls_name: str) -> None:
    err = exceptions.error_from_fields(fields)
    assert type(err) is getattr(exceptions, cls_name)
    assert err.sqlstate == fields.get("C")
    assert err.args == (fields["M"],)
    assert err.hint is None


def test_warning_class_code_in_an_error_response() -> None:
    err = exceptions.error_from_fields({"C": "01004", "M": "truncated"})
    assert type(err) is exceptions.StringDataRightTruncation
    assert isinstance(err, Warning)
    assert isinstance(err, Exception)
    assert err.message == "truncated"


# --- message_from_fields ----------------------------------------------------------------------


def test_notice_with_an_error_code_gets_that_class() -> None:
    fields = {"S": "NOTICE", "V": "NOTICE", "C": "42P07", "M": 'relation "t" already exists'}
    msg = exceptions.message_from_fields(fields, query="CREATE TABLE IF NOT EXISTS t ()")
    assert type(msg) is exceptions.DuplicateTableError
    assert msg.query == "CREATE TABLE IF NOT EXISTS t ()"
    assert msg.severity == "NOTICE"


def test_notice_with_an_unknown_code_is_a_log_message() -> None:
    msg = exceptions.message_from_fields({"S": "NOTICE", "C": "00000", "M": "hello"})
    assert type(msg) is exceptions.PostgresLogMessage
    assert str(msg) == "PostgresLogMessage: hello"
    assert msg.as_dict() == {"severity": "NOTICE", "sqlstate": "00000", "message": "hello"}
    assert msg.query is None
    # No class-level fallback for notices: 42P99 is not mapped to SyntaxOrAccessError.
    other = exceptions.message_from_fields({"S": "NOTICE", "C": "42P99", "M": "x"})
    assert type(other) is exceptions.PostgresLogMessage


def test_unknown_warning_is_a_postgres_warning() -> None:
    # The non-localized severity decides.
    fields = {"S": "WARNUNG", "V": "WARNING", "C": "ZZ000", "M": "careful"}
    msg = exceptions.message_from_fields(fields)
    assert type(msg) is exceptions.PostgresWarning
    assert str(msg) == "PostgresWarning: careful"
    assert msg.args == ("careful",)
    only_s = exceptions.message_from_fields({"S": "warning", "C": "ZZ000", "M": "x"})
    assert type(only_s) is exceptions.PostgresWarning


def test_warning_codes_give_their_class() -> None:
    msg = exceptions.message_from_fields({"S": "WARNING", "C": "01P01", "M": "deprecated"})
    assert type(msg) is exceptions.DeprecatedFeature
    assert str(msg) == "DeprecatedFeature: deprecated"


def test_log_messages_are_immutable() -> None:
    msg = exceptions.message_from_fields({"S": "NOTICE", "C": "00000", "M": "hello"})
    with pytest.raises(TypeError, match="immutable"):
        msg.message = "changed"
    assert msg.message == "hello"


def test_log_message_new_is_message_from_fields() -> None:
    msg = exceptions.PostgresLogMessage.new({"S": "NOTICE", "M": "m"}, query="q")
    assert type(msg) is exceptions.PostgresLogMessage
    assert msg.query == "q"


# --- client-side errors -----------------------------------------------------------------------


def test_interface_error_detail_hint_and_with_msg() -> None:
    err = exceptions.UnsupportedClientFeatureError("no such codec", detail="d", hint="h")
    assert str(err) == "no such codec\nDETAIL:  d\nHINT:  h"
    assert err.args == ("no such codec",)
    try:
        raise err
    except exceptions.InterfaceError as caught:
        copy = caught.with_msg("query argument $1: no such codec")
    assert type(copy) is exceptions.UnsupportedClientFeatureError
    assert (copy.detail, copy.hint) == ("d", "h")
    assert str(copy).startswith("query argument $1: no such codec\nDETAIL:  d")
    assert copy.__traceback__ is not None
    assert traceback.extract_tb(copy.__traceback__)[-1].name == (
        "test_interface_error_detail_hint_and_with_msg"
    )
    assert str(exceptions.InterfaceError("connection is closed")) == "connection is closed"


def test_interface_warning_and_configuration_error() -> None:
    warning = exceptions.InterfaceWarning("careful", hint="do this")
    assert isinstance(warning, UserWarning)
    assert str(warning) == "careful\nHINT:  do this"
    assert isinstance(exceptions.ClientConfigurationError("bad"), ValueError)


def test_outdated_schema_cache_error() -> None:
    err = exceptions.OutdatedSchemaCacheError(
        "type changed", schema="public", data_type="mytype", position="2"
    )
    assert (err.schema_name, err.data_type_name, err.position) == ("public", "mytype", "2")
    assert isinstance(err, exceptions.InternalClientError)
    assert str(err) == "type changed"


# --- packaging --------------------------------------------------------------------------------


def test_exceptions_package_imports_nothing_else_from_ferropg() -> None:
    package = ROOT / "python" / "ferropg" / "exceptions"
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 1 or not (node.module or "").startswith("ferropg"), path
                assert node.level <= 1, path
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("ferropg"), path


def test_generated_files_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_sqlstate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_matches_installed_asyncpg() -> None:
    asyncpg_exceptions = pytest.importorskip("asyncpg.exceptions")
    assert sorted(asyncpg_exceptions.__all__) == sorted(exceptions.__all__)
    for name in asyncpg_exceptions.__all__:
        theirs, ours = getattr(asyncpg_exceptions, name), getattr(exceptions, name)
        assert [c.__name__ for c in ours.__mro__] == [c.__name__ for c in theirs.__mro__], name
        assert vars(ours).get("sqlstate") == vars(theirs).get("sqlstate"), name


async def test_in_parameter_gets_an_any_hint(dsn):
    import ferropg

    con = await ferropg.connect(dsn)
    try:
        with pytest.raises(exceptions.PostgresSyntaxError) as info:
            await con.fetch("SELECT 1 WHERE 1 IN $1", [1, 2])
        assert "any($1::type[])" in info.value.hint
        with pytest.raises(exceptions.PostgresSyntaxError) as info:
            await con.fetch("SELECT 1 WHERE 1 = $1 IN", 1)
        assert not info.value.hint or "any(" not in info.value.hint
        # A syntax error elsewhere gets no such hint.
        with pytest.raises(exceptions.PostgresSyntaxError) as info:
            await con.fetch("SELEC $1", 1)
        assert not info.value.hint
    finally:
        await con.close()

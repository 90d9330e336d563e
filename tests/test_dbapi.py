"""ferropg.dbapi: PEP 249 on the blocking face, against a real server.

The third-party compliance suite (dbapi-compliance 1.15.0, ``dbapi20.py``) runs with only
its connection arguments filled in and its two driver-specific tests overridden, as its
documentation asks; the tests after it check what the suite does not.
"""

from __future__ import annotations

import datetime
import threading
import time

import dbapi20
import pytest

import ferropg
import ferropg.dbapi as db
from ferropg import exceptions


# The suite leaves a connection unclosed (test_ExceptionsAsConnectionAttributes); its
# ResourceWarning, which pytest makes an error here, is the driver doing its job.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
class TestCompliance(dbapi20.DatabaseAPI20Test):
    driver = db
    connect_args = ()
    connect_kw_args: dict = {}  # filled in by the fixture below

    @pytest.fixture(autouse=True)
    def _server(self, dsn):
        self.connect_kw_args = {"dsn": dsn}

    def test_nextset(self):
        # Driver-specific (its docs): one statement gives at most one result set here.
        con = self._connect()
        try:
            cur = con.cursor()
            cur.execute("SELECT 1")
            assert cur.nextset() is None
        finally:
            con.close()

    def test_setoutputsize(self):
        # Driver-specific: values always arrive whole, so sizes change nothing.
        con = self._connect()
        try:
            cur = con.cursor()
            cur.setoutputsize(10, 0)
            cur.execute("SELECT repeat('x', 100)")
            assert cur.fetchone() == ("x" * 100,)
        finally:
            con.close()


@pytest.fixture
def con(dsn):
    c = db.connect(dsn)
    try:
        yield c
    finally:
        if not c.closed:
            c.close()


def test_parameter_styles(con):
    cur = con.cursor()
    cur.execute("SELECT %s::int + %s::int", (1, 2))
    assert cur.fetchone() == (3,)
    cur.execute("SELECT %(a)s::int * %(b)s::int + %(a)s::int", {"a": 2, "b": 5})
    assert cur.fetchone() == (12,)
    # PostgreSQL's own style, where % is the modulo operator.
    cur.execute("SELECT $1::int % 3, $1::int = any($2::int[])", [7, [1, 7]])
    assert cur.fetchone() == (1, True)
    # %% is a percent sign; placeholders in literals and comments are text.
    cur.execute("SELECT '100%%', '%s', %s::text -- %s", ["x"])
    assert cur.fetchone() == ("100%", "%s", "x")
    # Without parameters the text goes as it is.
    cur.execute("SELECT '100%%', 7 % 4")
    assert cur.fetchone() == ("100%%", 3)


def test_placeholders_follow_standard_conforming_strings(con):
    cur = con.cursor()
    con.autocommit = True
    cur.execute("SET standard_conforming_strings = off")
    try:
        # Here a backslash escapes the quote: '%s' in the literal is not a placeholder.
        cur.execute("SELECT E'\\\\', '\\' %s', %s::int", [5])
        assert cur.fetchone()[2] == 5
    finally:
        cur.execute("SET standard_conforming_strings = on")


def test_bad_parameters_are_programming_errors(con):
    cur = con.cursor()
    with pytest.raises(db.ProgrammingError, match="2 placeholders but 1"):
        cur.execute("SELECT %s, %s", [1])
    with pytest.raises(db.ProgrammingError, match="no value given"):
        cur.execute("SELECT %(a)s", {"b": 1})
    with pytest.raises(db.ProgrammingError, match="mix"):
        cur.execute("SELECT %s, %(a)s", [1])
    with pytest.raises(db.ProgrammingError, match="mix"):
        cur.execute("SELECT %s, $1", [1])
    with pytest.raises(db.ProgrammingError, match="mapping"):
        cur.execute("SELECT %(a)s", [1])
    with pytest.raises(db.ProgrammingError, match="sequence or a mapping"):
        cur.execute("SELECT %s", "1")
    with pytest.raises(db.ProgrammingError, match="unsupported placeholder"):
        cur.execute("SELECT %d", [1])
    # A value the type cannot take: the client's DataError, and PEP 249's.
    with pytest.raises(db.DataError) as e:
        cur.execute("SELECT %s::int", ["not a number"])
    assert isinstance(e.value, exceptions.DataError)
    cur.execute("SELECT 1")
    assert cur.fetchone() == (1,)


def test_server_errors_are_both_classes(con):
    cur = con.cursor()
    cur.execute("CREATE TEMP TABLE u (id int PRIMARY KEY)")
    cur.execute("INSERT INTO u VALUES (1)")
    with pytest.raises(db.IntegrityError) as e:
        cur.execute("INSERT INTO u VALUES (1)")
    err = e.value
    assert isinstance(err, exceptions.UniqueViolationError)
    assert isinstance(err, db.DatabaseError) and isinstance(err, ferropg.PostgresError)
    assert err.sqlstate == "23505"
    assert err.constraint_name == "u_pkey"
    assert err.table_name == "u"
    con.rollback()
    for sql, pep, pg in [
        ("SELECT 1/0", db.DataError, exceptions.DivisionByZeroError),
        ("SELECT * FROM nowhere", db.ProgrammingError, exceptions.UndefinedTableError),
        ("SELEC 1", db.ProgrammingError, exceptions.PostgresSyntaxError),
    ]:
        with pytest.raises(pep) as e:
            cur.execute(sql)
        assert isinstance(e.value, pg)
        con.rollback()


def test_implicit_transactions_and_autocommit(con, dsn):
    cur = con.cursor()
    cur.execute("CREATE TABLE dbapi_tx (id int)")
    con.commit()
    try:
        cur.execute("INSERT INTO dbapi_tx VALUES (1)")
        assert con.connection.is_in_transaction()
        with db.connect(dsn) as other:
            ocur = other.cursor()
            ocur.execute("SELECT count(*) FROM dbapi_tx")
            assert ocur.fetchone() == (0,)  # not committed yet
            con.rollback()
            cur.execute("INSERT INTO dbapi_tx VALUES (2)")
            con.commit()
            ocur.execute("SELECT array_agg(id) FROM dbapi_tx")
            assert ocur.fetchone() == ([2],)
        con.autocommit = True
        cur.execute("INSERT INTO dbapi_tx VALUES (3)")
        assert not con.connection.is_in_transaction()
        con.autocommit = False
        cur.execute("INSERT INTO dbapi_tx VALUES (4)")
        with pytest.raises(db.ProgrammingError, match="inside a transaction"):
            con.autocommit = True
        con.rollback()
    finally:
        con.autocommit = True
        cur.execute("DROP TABLE dbapi_tx")


def test_description_rowcount_and_type_objects(con):
    cur = con.cursor()
    cur.execute(
        "SELECT 1::int AS n, 'a'::text AS s, now() AS t, '\\x00'::bytea AS b, 2.5::numeric AS d"
    )
    names = [d[0] for d in cur.description]
    assert names == ["n", "s", "t", "b", "d"]
    codes = [d[1] for d in cur.description]
    assert codes[0] == db.NUMBER and codes[1] == db.STRING and codes[2] == db.DATETIME
    assert codes[3] == db.BINARY and codes[4] == db.NUMBER and codes[1] != db.NUMBER
    assert all(len(d) == 7 for d in cur.description)
    assert cur.rowcount == 1
    cur.execute("CREATE TEMP TABLE rc (id int)")
    assert cur.description is None and cur.rowcount == -1
    cur.execute("INSERT INTO rc SELECT generate_series(1, 5)")
    assert cur.rowcount == 5
    cur.execute("UPDATE rc SET id = id + 1 WHERE id > %s", [2])
    assert cur.rowcount == 3
    with pytest.raises(db.ProgrammingError):
        cur.fetchone()
    assert db.Date(2024, 1, 2) == datetime.date(2024, 1, 2)
    assert db.TimestampFromTicks(0).year in (1969, 1970)
    assert db.Binary(b"x") == b"x"


def test_rows_fetch_in_pieces_and_iterate(con):
    cur = con.cursor()
    cur.execute("SELECT g FROM generate_series(1, 7) g")
    assert cur.fetchone() == (1,)
    cur.arraysize = 2
    assert cur.fetchmany() == [(2,), (3,)]
    assert cur.fetchmany(3) == [(4,), (5,), (6,)]
    assert cur.rownumber == 6
    assert list(cur) == [(7,)]
    assert cur.fetchone() is None and cur.fetchall() == []


def test_row_factories(dsn):
    with db.connect(dsn, row_factory=db.dict_row) as c:
        cur = c.cursor()
        cur.execute("SELECT 1 AS a, 'x' AS b")
        assert cur.fetchone() == {"a": 1, "b": "x"}
        c.row_factory = db.record_row
        cur.execute("SELECT 1 AS a")
        assert isinstance(cur.fetchone(), ferropg.Record)


def test_scripts_without_parameters(con):
    cur = con.cursor()
    cur.execute("CREATE TEMP TABLE sc (id int); INSERT INTO sc VALUES (1), (2)")
    assert cur.rowcount == 2
    cur.execute("SELECT count(*) FROM sc")
    assert cur.fetchone() == (2,)


def test_executemany_and_callproc(con):
    cur = con.cursor()
    cur.execute("CREATE TEMP TABLE em (id int, name text)")
    cur.executemany("INSERT INTO em VALUES (%s, %s)", [(1, "a"), (2, "b")])
    cur.executemany("INSERT INTO em VALUES (%(id)s, %(name)s)", [{"id": 3, "name": "c"}])
    cur.execute("SELECT count(*) FROM em")
    assert cur.fetchone() == (3,)
    assert cur.callproc("upper", ["abc"]) == ["abc"]
    assert cur.fetchall() == [("ABC",)]


def test_closing(dsn):
    c = db.connect(dsn)
    cur = c.cursor()
    cur.close()
    with pytest.raises(db.InterfaceError):
        cur.execute("SELECT 1")
    cur.close()  # a cursor may be closed twice
    c.close()
    assert c.closed
    with pytest.raises(db.Error):
        c.close()  # PEP 249: no operation after close, a second close included
    with pytest.raises(db.InterfaceError):
        c.cursor()
    with pytest.raises(db.InterfaceError):
        c.commit()


def test_with_block_commits_or_rolls_back_and_closes(dsn):
    with db.connect(dsn) as c:
        c.autocommit = True
        c.cursor().execute("CREATE TABLE dbapi_with (id int)")
        c.autocommit = False
    try:
        with db.connect(dsn) as c:
            c.cursor().execute("INSERT INTO dbapi_with VALUES (1)")
        assert c.closed
        with pytest.raises(RuntimeError), db.connect(dsn) as c:
            c.cursor().execute("INSERT INTO dbapi_with VALUES (2)")
            raise RuntimeError
        with db.connect(dsn) as c:
            cur = c.cursor()
            cur.execute("SELECT array_agg(id) FROM dbapi_with")
            assert cur.fetchone() == ([1],)
    finally:
        with db.connect(dsn, autocommit=True) as c:
            c.cursor().execute("DROP TABLE dbapi_with")


def test_connection_errors_are_operational(connect_kwargs):
    with pytest.raises(db.OperationalError):
        db.connect(host="127.0.0.1", port=1, user="x", database="x", timeout=5)
    with pytest.raises(db.ProgrammingError):  # 3D000
        db.connect(**{**connect_kwargs, "database": "no_such_database"})


def test_two_threads_at_once_is_an_interface_error(con):
    started = threading.Event()

    def hold() -> None:
        started.set()
        con.cursor().execute("SELECT pg_sleep(0.5)")

    t = threading.Thread(target=hold)
    t.start()
    started.wait()
    time.sleep(0.1)
    with pytest.raises(db.InterfaceError, match="two threads"):
        con.cursor().execute("SELECT 1")
    t.join()


def test_a_server_gone_mid_query_is_operational(con, dsn):
    cur = con.cursor()
    cur.execute("SELECT pg_backend_pid()")
    (pid,) = cur.fetchone()
    con.rollback()
    with db.connect(dsn, autocommit=True) as admin:
        killer = threading.Timer(
            0.3, admin.cursor().execute, ("SELECT pg_terminate_backend(%s)", [pid])
        )
        killer.start()
        with pytest.raises(db.OperationalError):
            cur.execute("SELECT pg_sleep(5)")
        killer.join()
    assert con.closed


def test_named_cursors_read_a_piece_at_a_time(con):
    cur = con.cursor("big")
    assert isinstance(cur, db.ServerCursor) and cur.name == "big"
    cur.execute("SELECT g, g::text AS t FROM generate_series(1, %s) g", [2500])
    assert [d[0] for d in cur.description] == ["g", "t"]
    assert cur.fetchone() == (1, "1")
    assert cur.fetchmany(3) == [(2, "2"), (3, "3"), (4, "4")]
    cur.itersize = 700
    rest = cur.fetchall()
    assert len(rest) == 2496 and rest[-1] == (2500, "2500")
    assert cur.rowcount == 2500
    assert cur.fetchone() is None
    # The portal lives in the implicit transaction; a plain cursor works beside it.
    other = con.cursor()
    other.execute("SELECT 1")
    assert other.fetchone() == (1,)
    cur.execute("SELECT g FROM generate_series(1, 5) g")
    assert [r[0] for r in cur] == [1, 2, 3, 4, 5]
    with pytest.raises(db.NotSupportedError):
        cur.executemany("SELECT %s", [[1]])
    con.rollback()


def test_named_cursors_need_a_transaction(dsn):
    with db.connect(dsn, autocommit=True) as c:
        with pytest.raises(db.ProgrammingError, match="transaction"):
            c.cursor("x").execute("SELECT 1")


def test_client_cursors_write_values_into_statements_that_take_none(con, dsn):
    cur = db.ClientCursor(con)
    cur.execute("SET application_name = %s", ["it's a \\ test"])
    cur.execute("SHOW application_name")
    assert cur.fetchone() == ("it's a \\ test",)
    assert cur.mogrify("SELECT %s, %s, %s", [None, True, -5]) == "SELECT NULL, true, (-5)"
    assert cur.mogrify("SELECT 1-%s", [-1]) == "SELECT 1-(-1)"  # never a -- comment
    values = [
        "x'y",
        "back\\slash",
        b"\x00\xff",
        -1.5,
        float("inf"),
        datetime.date(2024, 2, 3),
        datetime.datetime(2024, 2, 3, 4, 5, 6, tzinfo=datetime.UTC),
        datetime.timedelta(days=1, seconds=2),
        [1, 2, 3],
    ]
    for scs in ("on", "off"):
        cur.execute(f"SET standard_conforming_strings = {scs}")
        cur.execute("SELECT " + ", ".join(["%s"] * len(values)), values)
        assert list(cur.fetchone()) == values
        cur.execute("SELECT %(a)s || %(a)s || '%%'", {"a": "\\'"})
        assert cur.fetchone() == ("\\'\\'%",)
    with pytest.raises(db.DataError):
        cur.mogrify("SELECT %s", [object()])
    with pytest.raises(db.ProgrammingError):
        cur.mogrify("SELECT %s, %s", [1])
    with pytest.raises(db.ProgrammingError):
        cur.mogrify("SELECT %(a)s", {"b": 1})
    con.rollback()
    with db.connect(dsn, cursor_factory=db.ClientCursor) as c:
        assert isinstance(c.cursor(), db.ClientCursor)

"""ferropg.sync: asyncpg's API in blocking form, against a real server."""

from __future__ import annotations

import signal
import threading
import time

import pytest

import ferropg
import ferropg.sync
from ferropg import exceptions


@pytest.fixture
def con(dsn):
    c = ferropg.sync.connect(dsn)
    try:
        yield c
    finally:
        c.close()


def test_queries_return_what_the_async_face_returns(con):
    assert con.fetchval("SELECT 1") == 1
    assert con.fetchval("SELECT $1::int + 1", 41) == 42
    row = con.fetchrow("SELECT $1::text AS a, 2 AS b", "x")
    assert isinstance(row, ferropg.Record)
    assert (row["a"], row["b"]) == ("x", 2)
    assert con.fetchrow("SELECT 1 WHERE false") is None
    assert con.fetchval("SELECT 1 WHERE false") is None
    assert [r[0] for r in con.fetch("SELECT g FROM generate_series(1, $1::int) g", 3)] == [1, 2, 3]
    assert con.fetchval("SELECT $1::int[]", [1, 2]) == [1, 2]
    assert con.fetchval("SELECT 'a'::text AS v", column="v") == "a"
    # The fast path (a cached statement) and the first run give the same answers.
    for _ in range(3):
        assert con.fetchval("SELECT $1::int = any($2::int[])", 2, [1, 2]) is True


def test_execute_returns_the_status_and_runs_scripts(con):
    assert con.execute("CREATE TEMP TABLE s (id int); INSERT INTO s VALUES (1)") == "INSERT 0 1"
    assert con.execute("INSERT INTO s VALUES ($1), ($2)", 2, 3) == "INSERT 0 2"
    assert con.execute("UPDATE s SET id = id + $1", 10) == "UPDATE 3"
    con.executemany("INSERT INTO s VALUES ($1)", [(i,) for i in range(5)])
    assert con.fetchval("SELECT count(*) FROM s") == 8
    rows = con.fetchmany("INSERT INTO s VALUES ($1) RETURNING id", [(100,), (101,)])
    assert [r[0] for r in rows] == [100, 101]


def test_server_errors_keep_the_connection_usable(con):
    with pytest.raises(exceptions.DivisionByZeroError) as e:
        con.fetchval("SELECT 1 / $1::int", 0)
    assert e.value.sqlstate == "22012"
    with pytest.raises(exceptions.UndefinedTableError):
        con.fetch("SELECT * FROM no_such_table")
    with pytest.raises(exceptions.PostgresSyntaxError):
        con.execute("SELEC 1")
    assert con.fetchval("SELECT 2") == 2


def test_requests_larger_than_the_socket_takes_at_once(con):
    # Requests go straight to the socket; what it does not take at once waits in the
    # event loop's transport, and every later request must follow it there, in order.
    big = b"x" * 20_000_000
    for _ in range(3):  # the first run prepares; the later ones take the fast path
        assert con.fetchval("SELECT length($1::bytea)", big) == len(big)
        assert con.fetchval("SELECT $1::int", 7) == 7
    con.execute("CREATE TEMP TABLE big_rows (b bytea)")
    con.executemany("INSERT INTO big_rows VALUES ($1)", [(big,), (b"y",), (big,)])
    assert con.fetchval("SELECT sum(length(b)) FROM big_rows") == 2 * len(big) + 1


def test_bad_arguments_raise_before_anything_is_sent(con):
    with pytest.raises(exceptions.DataError):
        con.fetchval("SELECT $1::int", "not a number")
    with pytest.raises(exceptions.InterfaceError):
        con.fetchval("SELECT $1::int", 1, 2)
    assert con.fetchval("SELECT $1::int", 7) == 7


def test_transactions_commit_roll_back_and_nest(con):
    con.execute("CREATE TEMP TABLE tx (id int)")
    with con.transaction():
        con.execute("INSERT INTO tx VALUES (1)")
        assert con.is_in_transaction()
        with pytest.raises(ZeroDivisionError), con.transaction():
            con.execute("INSERT INTO tx VALUES (2)")
            raise ZeroDivisionError
    assert not con.is_in_transaction()
    with pytest.raises(RuntimeError), con.transaction():
        con.execute("INSERT INTO tx VALUES (3)")
        raise RuntimeError
    tr = con.transaction(isolation="serializable")
    tr.start()
    con.execute("INSERT INTO tx VALUES (4)")
    tr.commit()
    assert [r[0] for r in con.fetch("SELECT id FROM tx ORDER BY id")] == [1, 4]


def test_cursors_need_a_transaction_and_read_in_pieces(con):
    query = "SELECT g FROM generate_series(1, 10) g"
    with pytest.raises(exceptions.NoActiveSQLTransactionError):
        con.cursor(query).fetch(1)
    with con.transaction():
        assert [r[0] for r in con.cursor(query, prefetch=3)] == list(range(1, 11))
        cur = con.cursor(query)
        assert [r[0] for r in cur.fetch(2)] == [1, 2]
        assert cur.forward(3) == 3
        assert cur.fetchrow()[0] == 6


def test_prepared_statements(con):
    ps = con.prepare("SELECT $1::int * 2 AS doubled")
    assert ps.fetchval(21) == 42
    assert ps.fetchrow(1)["doubled"] == 2
    assert [r[0] for r in ps.fetch(3)] == [6]
    assert [a.name for a in ps.get_attributes()] == ["doubled"]
    assert ps.get_query() == "SELECT $1::int * 2 AS doubled"
    assert isinstance(ps.explain(1), list)
    with con.transaction():
        assert [r[0] for r in ps.cursor(5)] == [10]


def test_copy_both_ways(con, tmp_path):
    con.execute("CREATE TEMP TABLE c (id int, name text)")
    assert con.copy_records_to_table("c", records=[(1, "a"), (2, "b")]) == "COPY 2"
    out = tmp_path / "c.csv"
    assert con.copy_from_table("c", output=str(out), format="csv") == "COPY 2"
    assert out.read_text() == "1,a\n2,b\n"
    assert con.copy_to_table("c", source=str(out), format="csv") == "COPY 2"
    assert con.fetchval("SELECT count(*) FROM c") == 4


def test_notifications_arrive_during_calls_and_poll(con, dsn):
    got: list[tuple[str, str]] = []

    def listener(_con, _pid, channel, payload):
        got.append((channel, payload))

    con.add_listener("news", listener)
    with ferropg.sync.connect(dsn) as other:
        other.execute("NOTIFY news, 'one'")
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            con.poll(0.05)
        assert got == [("news", "one")]
        other.execute("NOTIFY news, 'two'")
        time.sleep(0.2)
        # A query reads the notification that came first, and its callback runs.
        con.fetchval("SELECT 1")
        con.poll(0)
        assert got[-1] == ("news", "two")
    con.remove_listener("news", listener)


def test_two_threads_at_once_is_an_interface_error(con):
    started = threading.Event()

    def hold() -> None:
        started.set()
        con.execute("SELECT pg_sleep(0.5)")

    t = threading.Thread(target=hold)
    t.start()
    started.wait()
    time.sleep(0.1)
    with pytest.raises(exceptions.InterfaceError, match="two threads"):
        con.fetchval("SELECT 1")
    t.join()
    # One after the other is fine, whichever thread.
    assert con.fetchval("SELECT 1") == 1


def test_threads_wait_on_the_network_in_parallel(dsn):
    cons = [ferropg.sync.connect(dsn) for _ in range(4)]
    try:
        start = time.monotonic()
        threads = [threading.Thread(target=c.execute, args=("SELECT pg_sleep(0.5)",)) for c in cons]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Four half-second sleeps, one per thread: they overlap (the GIL is released).
        assert time.monotonic() - start < 1.5
    finally:
        for c in cons:
            c.close()


def test_timeouts_cancel_on_the_server(con):
    with pytest.raises(TimeoutError):
        con.execute("SELECT pg_sleep(10)", timeout=0.2)
    assert con.fetchval("SELECT 1") == 1
    assert (
        con.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(10)%' AND state = 'active'"
        )
        == 0
    )


@pytest.mark.parametrize("cached", [False, True], ids=["through-the-loop", "fast-path"])
def test_an_interrupt_cancels_the_query_on_the_server(con, cached):
    query = f"SELECT pg_sleep($1::float8) -- {cached}"
    if cached:
        con.fetchval(query, 0.0)  # now in the cache: the next call takes the fast path
    main = threading.get_ident()
    # A real SIGINT to the main thread, as Ctrl-C sends: it interrupts the wait.
    timer = threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        con.fetchval(query, 30.0)
    assert time.monotonic() - start < 10
    assert con.fetchval("SELECT 1") == 1
    # The server stopped the query rather than finishing it.
    assert time.monotonic() - start < 10


def test_a_server_gone_mid_query_is_a_connection_error(con, dsn):
    pid = con.get_server_pid()
    with ferropg.sync.connect(dsn) as admin:
        threading.Timer(0.3, admin.fetchval, ("SELECT pg_terminate_backend($1)", pid)).start()
        with pytest.raises(
            (exceptions.AdminShutdownError, ConnectionError, exceptions.ConnectionDoesNotExistError)
        ):
            con.fetchval("SELECT pg_sleep(5)")
        time.sleep(0.5)
    assert con.is_closed()
    with pytest.raises(exceptions.InterfaceError):
        con.fetchval("SELECT 1")


def test_connect_takes_the_async_faces_arguments(connect_kwargs):
    with ferropg.sync.connect(**connect_kwargs, server_settings={"application_name": "sync"}) as c:
        assert c.fetchval("SHOW application_name") == "sync"
        assert c.get_server_version().major >= 10
    with pytest.raises(TypeError):
        ferropg.sync.connect(**connect_kwargs, loop=None)
    with pytest.raises(exceptions.InvalidCatalogNameError):
        ferropg.sync.connect(**{**connect_kwargs, "database": "no_such_database"})


def test_close_is_final(dsn):
    c = ferropg.sync.connect(dsn)
    c.close()
    assert c.is_closed()
    with pytest.raises(exceptions.InterfaceError):
        c.fetchval("SELECT 1")
    c.close()  # a second close does nothing


def test_blocking_calls_work_inside_a_running_event_loop(dsn):
    # A notebook, or async code that calls blocking code: the outer loop waits.
    import asyncio

    async def main() -> int:
        with ferropg.sync.connect(dsn) as c:
            c.execute("SELECT 1")
            with c.transaction():
                c.execute("SELECT $1::int", 1)
            value = c.fetchval("SELECT $1::int + 1", 41)
        await asyncio.sleep(0)
        return value

    assert asyncio.run(main()) == 42

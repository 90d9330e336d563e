"""ferropg.sync.create_pool: blocking connections shared by threads."""

from __future__ import annotations

import threading
import time

import pytest

import ferropg.sync
from ferropg import exceptions


@pytest.fixture
def pool(dsn):
    p = ferropg.sync.create_pool(dsn, min_size=1, max_size=3)
    try:
        yield p
    finally:
        p.terminate()


def test_lend_and_give_back(pool):
    assert pool.get_size() == 1 and pool.get_idle_size() == 1
    with pool.acquire() as con:
        assert con.fetchval("SELECT 1") == 1
        assert pool.get_idle_size() == 0
        pid = con.get_server_pid()
    assert pool.get_idle_size() == 1
    with pool.acquire() as con:
        assert con.get_server_pid() == pid  # the same connection, reused
    assert pool.fetchval("SELECT $1::int", 5) == 5
    assert pool.execute("SELECT 1") == "SELECT 1"


def test_a_released_connection_cannot_be_used(pool):
    with pool.acquire() as con:
        pass
    with pytest.raises(exceptions.InterfaceError, match="released back to the pool"):
        con.fetchval("SELECT 1")
    lease = pool.acquire().get()
    pool.release(lease)
    with pytest.raises(exceptions.InterfaceError):
        pool.release(lease)


def test_release_resets_the_session(pool):
    with pool.acquire() as con:
        pid = con.get_server_pid()
        con.execute("BEGIN")
        con.execute("SET work_mem = '7MB'")
        con.execute("CREATE TEMP TABLE gone (id int)")
    with pool.acquire() as con:
        assert con.get_server_pid() == pid
        assert not con.is_in_transaction()
        assert con.fetchval("SHOW work_mem") != "7MB"


def test_max_size_makes_threads_wait_and_times_out(pool):
    held = [pool.acquire().get() for _ in range(3)]
    assert pool.get_size() == 3
    with pytest.raises(TimeoutError):
        pool.acquire(timeout=0.2).get()
    got: list = []

    def wait_for_one() -> None:
        with pool.acquire(timeout=5) as con:
            got.append(con.fetchval("SELECT 2"))

    t = threading.Thread(target=wait_for_one)
    t.start()
    time.sleep(0.2)
    assert not got
    pool.release(held.pop())
    t.join()
    assert got == [2]
    for con in held:
        pool.release(con)


def test_threads_share_the_pool(dsn):
    with ferropg.sync.create_pool(dsn, min_size=0, max_size=4) as p:
        results: list[int] = []
        lock = threading.Lock()

        def work(i: int) -> None:
            for j in range(20):
                with p.acquire() as con:
                    v = con.fetchval("SELECT $1::int * 100 + $2::int", i, j)
                with lock:
                    results.append(v)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == sorted(i * 100 + j for i in range(8) for j in range(20))
        assert p.get_size() <= 4


def test_init_setup_reset_and_max_queries(dsn):
    seen: list[str] = []
    p = ferropg.sync.create_pool(
        dsn,
        min_size=1,
        max_size=1,
        max_queries=3,
        init=lambda con: seen.append("init"),
        setup=lambda con: seen.append("setup"),
        reset=lambda con: seen.append("reset"),
    )
    try:
        pids = set()
        for _ in range(4):
            with p.acquire() as con:
                pids.add(con.get_server_pid())
                con.fetchval("SELECT 1")
                con.fetchval("SELECT 1")
        # Each connection was replaced after running max_queries queries.
        assert len(pids) >= 2
        assert seen.count("setup") == 4 and "reset" in seen
        assert seen.count("init") == len(pids)
    finally:
        p.close()
    assert p.is_closing()
    with pytest.raises(exceptions.InterfaceError):
        p.acquire().get()


def test_a_broken_connection_is_replaced(pool, dsn):
    with pool.acquire() as con:
        pid = con.get_server_pid()
    with ferropg.sync.connect(dsn) as admin:
        admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    time.sleep(0.3)
    # The dead connection is noticed on release or on the next lending at the latest.
    for _ in range(2):
        try:
            with pool.acquire() as con:
                assert con.fetchval("SELECT 1") == 1
                assert con.get_server_pid() != pid
                break
        except (
            exceptions.ConnectionDoesNotExistError,
            ConnectionError,
            exceptions.AdminShutdownError,
        ):
            continue
    else:
        pytest.fail("the pool kept lending a dead connection")

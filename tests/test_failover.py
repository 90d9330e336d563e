"""Replicas and failover on real servers (issue 12, item 3): a primary and a synchronous hot
standby (``tests/replication.py``), routing by ``target_session_attrs`` in both faces, a
pool that keeps serving a write workload while the primary crashes and the standby is
promoted, a standby answering a write, and the old primary coming back as a standby.

The module shares one pair of servers (a base backup is the slow part).  A failover
test leaves it with the roles swapped and the old primary rejoined as the standby; the
``pair`` fixture puts it back together first if a failed test left it half-way.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pool_workload import (
    ACQUIRE_TIMEOUT,
    MAX_SIZE,
    MIN_SIZE,
    ROUND_LIMIT,
    WHO,
    Workload,
    close_pool,
    floor_restored,
)
from replication import Node, ReplicaPair, wait_for

import ferropg
import ferropg.sync
from ferropg import exceptions

pytestmark = [pytest.mark.needs_cluster, pytest.mark.usefixtures("no_env_session_attrs")]

IN_RECOVERY = "SELECT pg_catalog.pg_is_in_recovery()"


@pytest.fixture(scope="module")
def _pair() -> Iterator[ReplicaPair]:
    if os.environ.get("PGDSN"):
        pytest.skip("$PGDSN is set: not managing PostgreSQL servers")
    pair = ReplicaPair()
    try:
        yield pair
    finally:
        pair.destroy()


@pytest.fixture
def pair(_pair: ReplicaPair) -> ReplicaPair:
    """The module's primary and synchronous standby, healthy at the start of the test."""
    _pair.heal()
    return _pair


# ------------------------------------------------------------------- routing ----

ATTRS = ["any", "read-write", "read-only", "primary", "standby", "prefer-standby"]


def _expected(pair: ReplicaPair, attr: str, order: tuple[Node, Node]) -> Node:
    """The server ``attr`` must choose from ``order``: ``any`` takes the first."""
    if attr == "any":
        return order[0]
    if attr in ("read-write", "primary"):
        return pair.primary
    return pair.standby


def _orders(pair: ReplicaPair) -> dict[str, tuple[Node, Node]]:
    return {
        "primary-first": (pair.primary, pair.standby),
        "standby-first": (pair.standby, pair.primary),
    }


def _connect_args(pair: ReplicaPair, order: tuple[Node, Node], attr: str, how: str):
    """``(dsn, kwargs)`` naming both hosts, with ``attr`` in the DSN, as keyword
    arguments (host and port lists), or as a keyword next to the DSN."""
    if how == "dsn":
        return pair.dsn(*order, target_session_attrs=attr), {}
    if how == "host-list":
        return None, {
            "host": [n.host for n in order],
            "port": [n.port for n in order],
            "user": "postgres",
            "database": "postgres",
            "target_session_attrs": attr,
        }
    return pair.dsn(*order), {"target_session_attrs": attr}


@pytest.mark.parametrize("how", ["dsn", "host-list", "keyword"])
async def test_routing_async(pair: ReplicaPair, how: str) -> None:
    for order_name, order in _orders(pair).items():
        for attr in ATTRS:
            want = _expected(pair, attr, order)
            dsn, kwargs = _connect_args(pair, order, attr, how)
            con = await ferropg.connect(dsn, **kwargs)
            try:
                in_recovery, port = await con.fetchrow(WHO)
            finally:
                await con.close()
            assert (port, in_recovery) == (want.port, want is pair.standby), (order_name, attr)


@pytest.mark.parametrize("how", ["dsn", "host-list", "keyword"])
def test_routing_sync(pair: ReplicaPair, how: str) -> None:
    for order_name, order in _orders(pair).items():
        for attr in ATTRS:
            want = _expected(pair, attr, order)
            dsn, kwargs = _connect_args(pair, order, attr, how)
            with ferropg.sync.connect(dsn, **kwargs) as con:
                in_recovery, port = con.fetchrow(WHO)
            assert (port, in_recovery) == (want.port, want is pair.standby), (order_name, attr)


async def test_routing_with_the_primary_down(pair: ReplicaPair) -> None:
    """Between the crash and the promotion: nothing takes writes, the standby still
    answers those who accept it, and ``read-write`` fails with the crashed host's error
    rather than a wrong server."""
    crashed = pair.primary
    await asyncio.to_thread(crashed.crash)
    try:
        order = (crashed, pair.standby)
        for attr in ("read-write", "primary"):
            try:
                con = await ferropg.connect(pair.dsn(*order), target_session_attrs=attr, timeout=10)
            except OSError:
                continue
            # Closed before failing: an open connection at the end of the test would be
            # reported at loop close, where a warning-as-error hangs uvloop.
            in_recovery, port = await con.fetchrow(WHO)
            await con.close()
            pytest.fail(f"{attr} connected to port {port} (in recovery: {in_recovery})")
        for attr in ("any", "standby", "read-only", "prefer-standby"):
            con = await ferropg.connect(pair.dsn(*order), target_session_attrs=attr, timeout=10)
            try:
                assert tuple(await con.fetchrow(WHO)) == (True, pair.standby.port), attr
            finally:
                await con.close()
    finally:
        await asyncio.to_thread(crashed.start)
    # The pair is whole again: the old primary restarts as a primary, with everything
    # its synchronous standby had confirmed.
    await asyncio.to_thread(pair.wait_synchronous)


# ----------------------------------------------------- a standby answering a write ----


def _make_table(pair: ReplicaPair, name: str) -> None:
    """(Re)creates table ``name`` on the primary and waits until the standby sees it."""
    pair.primary.sql(f"DROP TABLE IF EXISTS {name}; CREATE TABLE {name} (id int PRIMARY KEY)")
    wait_for(
        lambda: pair.standby.sql(f"SELECT to_regclass('{name}') IS NOT NULL") == "t",
        30,
        f"{name} on the standby",
    )


async def test_standby_answers_a_write(pair: ReplicaPair) -> None:
    _make_table(pair, "fo_ro")
    con = await ferropg.connect(pair.dsn(pair.standby, pair.primary), target_session_attrs="any")
    try:
        assert tuple(await con.fetchrow(WHO)) == (True, pair.standby.port)
        attempts = [
            lambda: con.execute("INSERT INTO fo_ro VALUES (1)"),  # simple query
            lambda: con.execute("INSERT INTO fo_ro VALUES ($1)", 1),  # extended
            lambda: con.fetchval("INSERT INTO fo_ro VALUES ($1) RETURNING id", 2),
            lambda: con.executemany("INSERT INTO fo_ro VALUES ($1)", [(3,), (4,)]),
            lambda: con.copy_records_to_table("fo_ro", records=[(5,)]),
        ]
        for attempt in attempts:
            with pytest.raises(exceptions.ReadOnlySQLTransactionError) as info:
                await attempt()
            assert info.value.sqlstate == "25006"
            # The connection is idle and usable, its statement cache included.
            assert not con.is_in_transaction()
            assert await con.fetchval("SELECT $1::int + 1", 41) == 42

        with pytest.raises(exceptions.ReadOnlySQLTransactionError):
            async with con.transaction():
                await con.execute("INSERT INTO fo_ro VALUES (6)")
        assert not con.is_in_transaction()
        assert await con.fetchval("SELECT count(*) FROM fo_ro") == 0
        # A read-only transaction on the standby still works after all that.
        async with con.transaction(readonly=True):
            assert await con.fetchval(IN_RECOVERY) is True
    finally:
        await con.close()
    assert pair.primary.sql("SELECT count(*) FROM fo_ro") == "0"


async def test_standby_answers_a_write_through_a_pool(pair: ReplicaPair) -> None:
    _make_table(pair, "fo_ro_pool")
    async with ferropg.create_pool(
        pair.dsn(pair.standby), min_size=1, max_size=1, target_session_attrs="any"
    ) as pool:
        for i in range(3):
            async with pool.acquire(timeout=10) as con:
                pid = con.get_server_pid()
                with pytest.raises(exceptions.ReadOnlySQLTransactionError):
                    await con.execute("INSERT INTO fo_ro_pool VALUES ($1)", i)
                assert await con.fetchval("SELECT 1") == 1
        # The same session served every checkout: the error did not cost the connection.
        async with pool.acquire(timeout=10) as con:
            assert con.get_server_pid() == pid
        assert pool.get_size() == 1


def test_standby_answers_a_write_sync(pair: ReplicaPair) -> None:
    _make_table(pair, "fo_ro_sync")
    with ferropg.sync.connect(pair.dsn(pair.standby, pair.primary)) as con:
        assert tuple(con.fetchrow(WHO)) == (True, pair.standby.port)
        for args in (
            ("INSERT INTO fo_ro_sync VALUES (1)",),
            ("INSERT INTO fo_ro_sync VALUES ($1)", 1),
        ):
            with pytest.raises(exceptions.ReadOnlySQLTransactionError):
                con.execute(*args)
            assert not con.is_in_transaction()
            assert con.fetchval("SELECT $1::int + 1", 1) == 2
        with pytest.raises(exceptions.ReadOnlySQLTransactionError):
            with con.transaction():
                con.execute("INSERT INTO fo_ro_sync VALUES (2)")
        assert con.fetchval("SELECT count(*) FROM fo_ro_sync") == 0


# ---------------------------------------------------- a pool through a failover ----


async def _rows(node: Node, table: str) -> set[tuple[int, int]]:
    con = await ferropg.connect(node.dsn(), timeout=10)
    try:
        return {tuple(r) for r in await con.fetch(f"SELECT worker, seq FROM {table}")}
    finally:
        await con.close()


async def test_pool_keeps_serving_through_failover(pair: ReplicaPair) -> None:
    old, new = pair.primary, pair.standby
    # Commits wait for the standby: what the primary acknowledged, the standby has.
    assert old.streaming_to(new.name) == "sync"
    table = "fo_load"
    pair.primary.sql(
        f"DROP TABLE IF EXISTS {table}; "
        f"CREATE TABLE {table} (worker int, seq int, PRIMARY KEY (worker, seq))"
    )
    # The old primary first: after the failover its address is refused, and once it is
    # back it is a standby the pool must pass over.
    pool = ferropg.create_pool(
        pair.dsn(old, new),
        target_session_attrs="read-write",
        min_size=MIN_SIZE,
        max_size=MAX_SIZE,
        timeout=10,
    )
    await pool
    load = Workload(pool, table)
    try:
        await _run_through_failover(pair, pool, load)
        assert load.violations == [], load.violations
        # Every acknowledged commit is on the new primary...
        acked = {(a.worker, a.seq) for a in load.acked}
        on_new = await _rows(new, table)
        assert acked <= on_new, f"lost acknowledged commits: {sorted(acked - on_new)[:10]}"
        # ...and what it has reaches the rejoined standby too.
        wait_for(
            lambda: int(old.sql(f"SELECT count(*) FROM {table}")) >= len(on_new),
            30,
            "the rows on the rejoined standby",
        )
        assert on_new <= await _rows(old, table)
        # Writes after the promotion went to the new primary, and only there.
        assert {a.port for a in load.acked if a.at >= load.promoted} == {new.port}
        # The pool is within its bounds, and holds connections to the new primary only.
        await floor_restored(pool, MIN_SIZE)
        for _ in range(MAX_SIZE):
            async with pool.acquire(timeout=ACQUIRE_TIMEOUT) as con:
                assert tuple(await con.fetchrow(WHO)) == (False, new.port)
        print(
            f"\nfailover workload: {len(load.acked)} acknowledged of {load.rounds} rounds; "
            f"errors during the outage: {dict(load.errors)}"
        )
    finally:
        await close_pool(pool)


async def _run_through_failover(pair: ReplicaPair, pool: Any, load: Workload) -> None:
    """Runs the workload while the primary crashes, the standby is promoted and the
    old primary rejoins as a standby; stops it again."""
    tasks = load.start()
    try:
        await load.wait_acks_since(0, 5, 30, "before the failover")
        await floor_restored(pool, MIN_SIZE)

        # The primary crashes; its synchronous standby is promoted.
        await asyncio.to_thread(pair.fail_over)
        load.promoted = time.monotonic()
        await load.wait_acks_since(load.promoted, 5, 60, "after the promotion")

        # The old primary comes back, rewound, as a standby at the address the pool
        # tries first; then every connection is replaced, so each is chosen again.
        await asyncio.to_thread(pair.rejoin)
        await pool.expire_connections()
        expired = time.monotonic()
        await load.wait_acks_since(expired, 5, 60, "after the old primary came back")
    finally:
        load.stop.set()
        done, pending = await asyncio.wait(tasks, timeout=ROUND_LIMIT + 5)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert not pending, "workers did not stop"
    for task in done:
        assert task.exception() is None


# -------------------------------------------- the old primary back as a standby ----


async def test_old_primary_comes_back_as_a_standby(pair: ReplicaPair) -> None:
    old, new = pair.primary, pair.standby
    _make_table(pair, "fo_back")
    pair.primary.sql("INSERT INTO fo_back SELECT generate_series(1, 10)")
    # A pool made while ``old`` was the primary, on both addresses, ``old`` first.
    pool = ferropg.create_pool(
        pair.dsn(old, new), target_session_attrs="read-write", min_size=MAX_SIZE, max_size=MAX_SIZE
    )
    await pool
    try:
        assert pool.get_size() == MAX_SIZE
        # A clean stop this time (the workload test crashes it), then the promotion.
        await asyncio.to_thread(pair.fail_over, crash=False)
        await asyncio.to_thread(pair.rejoin)
        assert (pair.primary, pair.standby) == (new, old)
        await asyncio.to_thread(new.sql, "INSERT INTO fo_back SELECT generate_series(11, 20)")

        # The pool lost its connections with the old primary; whatever it opens now
        # must pass over the old primary, a standby at the address it tries first.
        for _ in range(3 * MAX_SIZE):
            async with pool.acquire(timeout=ACQUIRE_TIMEOUT) as con:
                assert tuple(await con.fetchrow(WHO)) == (False, new.port)
                await con.execute("INSERT INTO fo_back SELECT max(id) + 1 FROM fo_back")
        await floor_restored(pool, MAX_SIZE)
    finally:
        await close_pool(pool)

    # Those who want a standby find it, whichever address comes first.
    for order in ((old, new), (new, old)):
        for attr in ("standby", "prefer-standby", "read-only"):
            con = await ferropg.connect(pair.dsn(*order), target_session_attrs=attr)
            try:
                assert tuple(await con.fetchrow(WHO)) == (True, old.port), (attr, order)
            finally:
                await con.close()
            with ferropg.sync.connect(pair.dsn(*order), target_session_attrs=attr) as scon:
                assert tuple(scon.fetchrow(WHO)) == (True, old.port), (attr, order)
        for attr in ("read-write", "primary"):
            con = await ferropg.connect(pair.dsn(*order), target_session_attrs=attr)
            try:
                assert tuple(await con.fetchrow(WHO)) == (False, new.port), (attr, order)
            finally:
                await con.close()

    # It follows the new primary: the rows written since the failover arrive, and it
    # is the new primary's synchronous standby.
    total = new.sql("SELECT count(*) FROM fo_back")
    wait_for(lambda: old.sql("SELECT count(*) FROM fo_back") == total, 30, "rows on old")
    assert new.streaming_to(old.name) == "sync"
    con = await ferropg.connect(pair.dsn(old), target_session_attrs="any")
    try:
        with pytest.raises(exceptions.ReadOnlySQLTransactionError):
            await con.execute("INSERT INTO fo_back VALUES (0)")
        assert await con.fetchval("SELECT count(*) FROM fo_back") == int(total)
    finally:
        await con.close()

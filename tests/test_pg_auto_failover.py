"""Failover under pg_auto_failover (issue 12, item 3): a monitor and two nodes run by
``pg_autoctl`` (``tests/auto_failover.py``), with synchronous replication between the
nodes; the engine fails over (``pg_autoctl perform failover``: the primary is demoted to a
secondary and the secondary promoted) while a ``read-write`` pool on both nodes serves a
write workload (``tests/pool_workload.py``).

The formation lives for the module; each run of the test (one per event loop) fails over
once, so the nodes swap roles each time.  Every wait polls the monitor's states.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import pytest
from auto_failover import AutoFailoverError, Formation
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

import ferropg

pytestmark = [pytest.mark.needs_cluster, pytest.mark.usefixtures("no_env_session_attrs")]


@pytest.fixture(scope="module")
def formation() -> Iterator[Formation]:
    if os.environ.get("PGDSN"):
        pytest.skip("$PGDSN is set: not managing PostgreSQL servers")
    try:
        made = Formation()
    except AutoFailoverError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        made.start()
    except AutoFailoverError as e:
        made.close()
        pytest.fail(f"cannot start a pg_auto_failover formation: {e}", pytrace=False)
    try:
        yield made
    finally:
        made.close()


async def _rows(formation: Formation, name: str, table: str) -> set[tuple[int, int]]:
    con = await ferropg.connect(formation.dsn(name), timeout=10)
    try:
        return {tuple(r) for r in await con.fetch(f"SELECT worker, seq FROM {table}")}
    finally:
        await con.close()


async def test_pool_through_pg_auto_failover(formation: Formation) -> None:
    old = await asyncio.to_thread(formation.wait_stable)
    new = next(n for n in formation.node_names if n != old)
    table = "af_load"
    con = await ferropg.connect(formation.dsn(old), timeout=10)
    try:
        await con.execute(
            f"DROP TABLE IF EXISTS {table}; "
            f"CREATE TABLE {table} (worker int, seq int, PRIMARY KEY (worker, seq))"
        )
        # Commits wait for the secondary (pg_auto_failover's quorum of one).
        assert await con.fetchval("SHOW synchronous_standby_names") != ""
    finally:
        await con.close()

    # The primary's address first: it is demoted to a secondary under the pool.
    pool = ferropg.create_pool(
        formation.dsn(old, new),
        target_session_attrs="read-write",
        min_size=MIN_SIZE,
        max_size=MAX_SIZE,
        timeout=10,
    )
    await pool
    load = Workload(pool, table)
    try:
        tasks = load.start()
        try:
            await load.wait_acks_since(0, 5, 30, "before the failover")
            await floor_restored(pool, MIN_SIZE)

            started = time.monotonic()
            await asyncio.to_thread(formation.perform_failover)
            await asyncio.to_thread(formation.wait_stable, 90, primary=new)
            load.promoted = time.monotonic()
            await load.wait_acks_since(load.promoted, 5, 60, "after the failover")
            # New connections, each chosen again, while the old primary is a secondary.
            await pool.expire_connections()
            await load.wait_acks_since(time.monotonic(), 5, 60, "after expiring connections")
        finally:
            load.stop.set()
            done, pending = await asyncio.wait(tasks, timeout=ROUND_LIMIT + 5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert not pending, "workers did not stop"
        assert all(task.exception() is None for task in done)

        assert load.violations == [], load.violations
        # Every acknowledged commit is on the new primary, and reaches the old one.
        acked = {(a.worker, a.seq) for a in load.acked}
        on_new = await _rows(formation, new, table)
        assert acked <= on_new, f"lost acknowledged commits: {sorted(acked - on_new)[:10]}"
        deadline = time.monotonic() + 30
        while not on_new <= (on_old := await _rows(formation, old, table)):
            assert time.monotonic() < deadline, f"missing on {old}: {len(on_new - on_old)}"
            await asyncio.sleep(0.05)
        # Once the failover was over, writes went to the new primary only.
        assert {a.port for a in load.acked if a.at >= load.promoted} == {formation.ports[new]}
        await floor_restored(pool, MIN_SIZE)
        for _ in range(MAX_SIZE):
            async with pool.acquire(timeout=ACQUIRE_TIMEOUT) as con:
                assert tuple(await con.fetchrow(WHO)) == (False, formation.ports[new])
        print(
            f"\npg_auto_failover {old} -> {new} in {load.promoted - started:.1f}s: "
            f"{len(load.acked)} acknowledged of {load.rounds} rounds; "
            f"errors during the failover: {dict(load.errors)}"
        )
    finally:
        await close_pool(pool)

    # The demoted node is a secondary that those who want a standby find.
    for attr in ("standby", "prefer-standby", "read-only"):
        con = await ferropg.connect(formation.dsn(new, old), target_session_attrs=attr)
        try:
            assert tuple(await con.fetchrow(WHO)) == (True, formation.ports[old]), attr
        finally:
            await con.close()

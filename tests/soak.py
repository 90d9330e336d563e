"""Leak soak: RSS and open descriptors across long runs of the work a service repeats.

    python tests/soak.py [--scale S]     (``make soak``: scale 1)

At scale 1: 1,000,000 queries, 10,000 connect/close cycles, 100,000 server errors and
100,000 prepared statements, each on a loop of its own after a warm-up of a tenth of
its count (at least 2,000). A workload fails above its RSS budget (5 MB per million queries, 5 KB per
connect/close cycle, and the query budget for errors and statements) or when a file
descriptor is not given back. ``make test`` runs scale 0.1 (``tests/test_leaks.py``).

Against ``$PGDSN`` when set, otherwise a temporary cluster of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from dataclasses import dataclass

import ferropg
from ferropg import exceptions

MB = 1024 * 1024


@dataclass
class Result:
    name: str
    count: int
    rss_growth: int
    budget: int
    fd_delta: int

    @property
    def ok(self) -> bool:
        return self.rss_growth <= self.budget and self.fd_delta == 0

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "FAIL"
        return (
            f"{self.name:<20} {self.count:>9,} x  RSS {self.rss_growth / 1024:>9.1f} KiB"
            f" (budget {self.budget / 1024:.0f} KiB)  descriptors {self.fd_delta:+d}  {verdict}"
        )


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _queries(dsn: str, n: int) -> None:
    con = await ferropg.connect(dsn)
    try:
        for i in range(n):
            if await con.fetchval("SELECT $1::int", i) != i:
                raise AssertionError("wrong result")
    finally:
        await con.close()


async def _connect_close(dsn: str, n: int) -> None:
    for _ in range(n):
        con = await ferropg.connect(dsn)
        await con.close()


async def _server_errors(dsn: str, n: int) -> None:
    con = await ferropg.connect(dsn)
    try:
        for i in range(n):
            try:
                await con.fetchval("SELECT 1 / ($1::int - $1::int)", i)
            except exceptions.DivisionByZeroError:
                pass
            else:
                raise AssertionError("no error")
    finally:
        await con.close()


async def _prepared(dsn: str, n: int) -> None:
    con = await ferropg.connect(dsn)
    try:
        for i in range(n):
            stmt = await con.prepare(f"SELECT {i}::int AS n")
            if await stmt.fetchval() != i:
                raise AssertionError("wrong result")
            del stmt
        # The server holds no more statements than the client's cache.
        held = await con.fetchval("SELECT count(*) FROM pg_prepared_statements")
        if held > 1000:
            raise AssertionError(f"{held} prepared statements left on the server")
    finally:
        await con.close()


#: name, workload, count at scale 1, RSS budget in bytes per unit.
WORKLOADS = [
    ("queries", _queries, 1_000_000, 5 * MB / 1_000_000),
    ("connect/close", _connect_close, 10_000, 5 * 1024),
    ("server errors", _server_errors, 100_000, 5 * MB / 1_000_000),
    ("prepared statements", _prepared, 100_000, 5 * MB / 1_000_000),
]
#: Allocator granularity: one fresh pymalloc arena (1 MiB since Python 3.10) is not a
#: leak, so no budget is smaller.
RSS_FLOOR = 1024 * 1024


def measure(dsn: str, name: str, workload, count: int, per_unit: float) -> Result:
    """Runs a warm-up (a tenth of ``count``, at least 2,000), then ``count``, on a loop
    of their own: caches and allocator arenas fill during the warm-up."""
    asyncio.run(workload(dsn, max(count // 10, min(count, 2000))))
    gc.collect()
    rss0, fds0 = _rss(), _fds()
    asyncio.run(workload(dsn, count))
    gc.collect()
    budget = int(max(per_unit * count, RSS_FLOOR))
    return Result(name, count, _rss() - rss0, budget, _fds() - fds0)


def run(dsn: str, scale: float) -> list[Result]:
    results = []
    for name, workload, count, per_unit in WORKLOADS:
        result = measure(dsn, name, workload, int(count * scale), per_unit)
        print(result, flush=True)
        results.append(result)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    dsn = os.environ.get("PGDSN")
    if dsn:
        results = run(dsn, args.scale)
    else:
        from ferropg import cluster

        with cluster.TempCluster() as c:
            results = run(c.dsn(), args.scale)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Side-by-side client benchmarks: ferropg against asyncpg (and any other installed driver).

Every driver runs the same workloads against the same server in one process, one after
the other, several rounds interleaved. The figure that matters is client CPU per
operation (``time.process_time``), because the machines are shared and noisy; wall time
is printed for reference. Ratios are against asyncpg.

    python benches/run.py                 # a temporary cluster, every workload
    PGDSN=postgresql://... python benches/run.py --rounds 5 --workload select_one
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import statistics
import sys
import time

WORKLOADS = {
    # name: (query, args, operations per round, rows per op)
    "select_one": ("SELECT $1::int4", (1,), 5000, 1),
    "rows_int_text_1000": (
        "SELECT g, 'row ' || g FROM generate_series(1, 1000) g",
        (),
        200,
        1000,
    ),
    "rows_timestamptz_1000": (
        "SELECT now() + g * interval '1 second' FROM generate_series(1, 1000) g",
        (),
        200,
        1000,
    ),
    "rows_numeric_1000": (
        "SELECT (g * 1.25)::numeric FROM generate_series(1, 1000) g",
        (),
        200,
        1000,
    ),
    "rows_uuid_1000": ("SELECT gen_random_uuid() FROM generate_series(1, 1000) g", (), 200, 1000),
}

DRIVERS = ("ferropg", "asyncpg")


async def measure(module, dsn: str, query: str, args: tuple, ops: int) -> tuple[float, float]:
    con = await module.connect(dsn)
    try:
        for _ in range(min(ops, 50)):  # warm up: statement cache, codecs
            await con.fetch(query, *args)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(ops):
            await con.fetch(query, *args)
        return time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        await con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workload", action="append", choices=sorted(WORKLOADS))
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    opts = parser.parse_args()

    drivers = {}
    for name in DRIVERS:
        with contextlib.suppress(ImportError):
            drivers[name] = importlib.import_module(name)
    if "ferropg" not in drivers:
        print("ferropg is not importable: run `make build-release` first", file=sys.stderr)
        return 1

    with contextlib.ExitStack() as stack:
        dsn = os.environ.get("PGDSN")
        if dsn is None:
            from ferropg import cluster as pg_cluster

            dsn = stack.enter_context(pg_cluster.TempCluster()).dsn()
        runner = asyncio.run
        if opts.uvloop:
            import uvloop

            runner = uvloop.run
        print(f"server: {dsn}; drivers: {', '.join(drivers)}; rounds: {opts.rounds}")
        print(
            f"{'workload':24} {'driver':10} {'cpu µs/op':>10} {'wall µs/op':>11} {'cpu ratio':>10}"
        )
        for wl in opts.workload or WORKLOADS:
            query, args, ops, rows = WORKLOADS[wl]
            cpu: dict[str, list[float]] = {d: [] for d in drivers}
            wall: dict[str, list[float]] = {d: [] for d in drivers}
            for _ in range(opts.rounds):
                for name, module in drivers.items():
                    c, w = runner(measure(module, dsn, query, args, ops))
                    cpu[name].append(c / ops * 1e6)
                    wall[name].append(w / ops * 1e6)
            base = statistics.median(cpu["asyncpg"]) if "asyncpg" in cpu else None
            for name in drivers:
                c = statistics.median(cpu[name])
                ratio = f"{c / base:.2f}x" if base else "-"
                print(
                    f"{wl:24} {name:10} {c:10.1f} {statistics.median(wall[name]):11.1f} {ratio:>10}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

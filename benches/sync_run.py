"""Side-by-side synchronous benchmarks: ferropg.sync, ferropg.dbapi, psycopg 3 (sync,
binary, prepared), psycopg2 and pg8000, with pgbench's figure in the same run.

Each (driver, workload) cell runs in a worker process of its own (``--worker``), so
``time.process_time()`` there is that driver's client CPU, all threads included. Cells run
one at a time, interleaving the drivers, for N rounds; the median is reported, with the
ratio to psycopg 3. Results are checked (row counts and a value), so a driver that
answers wrongly fails instead of looking fast.

    python benches/sync_run.py                  # temporary cluster (Unix socket), 3 rounds
    python benches/sync_run.py --quick          # smoke run: 1 round, small sizes
    python benches/sync_run.py --markdown out.md --json out.json

Workloads: ``tiny`` (``SELECT $1::int``), ``pk_row`` (one row of 10 columns by key),
``fetch_1000`` (1,000 such rows), ``executemany_10k`` (10,000 three-column inserts),
``copy_out`` (COPY of 100,000 rows to memory), and ``tiny_8_threads`` (8 threads, a
connection each, the tiny query: combined throughput).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

DRIVERS = ("ferropg.sync", "ferropg.dbapi", "psycopg", "psycopg2", "pg8000")
REFERENCE = "psycopg"
WORKLOADS = ("tiny", "pk_row", "fetch_1000", "executemany_10k", "copy_out", "tiny_8_threads")
ROWS = 10_000
COLUMNS = "id, name, qty, price, ok, created, note, score, code, tag"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ drivers (workers)


class Dbapi:
    """A PEP 249 driver: ``%s`` placeholders everywhere (every driver here takes them)."""

    def __init__(self, module: str, dsn: str) -> None:
        if module == "psycopg":
            import psycopg

            self.con = psycopg.connect(dsn, autocommit=True, prepare_threshold=0)
            self.cur = self.con.cursor(binary=True)
        elif module == "psycopg2":
            import psycopg2

            self.con = psycopg2.connect(dsn)
            self.con.autocommit = True
            self.cur = self.con.cursor()
        elif module == "pg8000":
            import pg8000.dbapi

            self.con = pg8000.dbapi.connect(**_pg8000_args(dsn))
            self.con.autocommit = True
            self.cur = self.con.cursor()
        else:
            import ferropg.dbapi

            self.con = ferropg.dbapi.connect(dsn, autocommit=True)
            self.cur = self.con.cursor()
        self.module = module

    def one(self, sql: str, args: tuple) -> Any:
        self.cur.execute(sql, args)
        return self.cur.fetchone()

    def all(self, sql: str, args: tuple) -> list:
        self.cur.execute(sql, args)
        return self.cur.fetchall()

    def many(self, sql: str, rows: list) -> None:
        self.cur.executemany(sql, rows)

    def copy_out(self, sql: str) -> int:
        buf = io.BytesIO()
        if self.module == "psycopg":
            with self.cur.copy(sql) as copy:
                for chunk in copy:
                    buf.write(chunk)
        elif self.module == "psycopg2":
            self.cur.copy_expert(sql, buf)
        elif self.module == "pg8000":
            self.cur.execute(sql, stream=buf)
        else:
            self.con.connection.copy_from_query(
                sql.removeprefix("COPY (").split(") TO")[0], output=buf
            )
        return len(buf.getvalue())

    def close(self) -> None:
        self.con.close()


class Sync:
    """ferropg.sync, with its own API (``$n`` placeholders)."""

    def __init__(self, dsn: str) -> None:
        import ferropg.sync

        self.con = ferropg.sync.connect(dsn)

    def one(self, sql: str, args: tuple) -> Any:
        return self.con.fetchrow(_dollar(sql), *args)

    def all(self, sql: str, args: tuple) -> list:
        return self.con.fetch(_dollar(sql), *args)

    def many(self, sql: str, rows: list) -> None:
        self.con.executemany(_dollar(sql), rows)

    def copy_out(self, sql: str) -> int:
        buf = io.BytesIO()
        self.con.copy_from_query(sql.removeprefix("COPY (").split(") TO")[0], output=buf)
        return len(buf.getvalue())

    def close(self) -> None:
        self.con.close()


@functools.cache
def _dollar(sql: str) -> str:
    """``sql`` with ``$n`` placeholders; cached, so that the conversion (the harness's,
    not the driver's work) is not counted in ferropg.sync's CPU per op."""
    n = 0
    out = []
    for part in sql.split("%s"):
        out.append(part)
        n += 1
        out.append(f"${n}")
    return "".join(out[:-1])


def _pg8000_args(dsn: str) -> dict:
    from urllib.parse import parse_qs, urlparse

    u = urlparse(dsn)
    q = {k: v[-1] for k, v in parse_qs(u.query).items()}
    args: dict = {"user": u.username or "postgres", "database": (u.path or "/postgres")[1:]}
    if "host" in q and q["host"].startswith("/"):
        args["unix_sock"] = os.path.join(q["host"], f".s.PGSQL.{q.get('port', 5432)}")
    else:
        args["host"] = u.hostname or "127.0.0.1"
        args["port"] = int(q.get("port") or u.port or 5432)
    return args


def open_driver(name: str, dsn: str) -> Any:
    return Sync(dsn) if name == "ferropg.sync" else Dbapi(name, dsn)


def run_cell(driver: str, workload: str, dsn: str, quick: bool) -> dict:
    """One cell, in this (worker) process: ``{ops, cpu, wall}``."""
    n = {"tiny": 5000, "pk_row": 5000, "fetch_1000": 200, "executemany_10k": 3, "copy_out": 5}[
        workload.replace("_8_threads", "")
    ]
    if quick:
        n = max(n // 10, 2)
    if workload == "tiny_8_threads":
        return _threads(driver, dsn, n)
    d = open_driver(driver, dsn)
    try:
        body = _body(d, workload)
        body(0)  # warm-up: statements prepared, codecs looked up
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            body(i)
        return {"ops": n, "cpu": time.process_time() - c0, "wall": time.perf_counter() - t0}
    finally:
        d.close()


def _body(d: Any, workload: str) -> Any:
    if workload == "tiny":

        def tiny(i: int) -> None:
            if d.one("SELECT %s::int", (i,))[0] != i:
                raise AssertionError("tiny: wrong value")

        return tiny
    if workload == "pk_row":
        sql = f"SELECT {COLUMNS} FROM sync_bench WHERE id = %s"

        def pk_row(i: int) -> None:
            key = i % ROWS + 1
            if d.one(sql, (key,))[0] != key:
                raise AssertionError("pk_row: wrong row")

        return pk_row
    if workload == "fetch_1000":
        sql = f"SELECT {COLUMNS} FROM sync_bench WHERE id <= %s"

        def fetch_1000(i: int) -> None:
            if len(d.all(sql, (1000,))) != 1000:
                raise AssertionError("fetch_1000: wrong count")

        return fetch_1000
    if workload == "executemany_10k":
        rows = [(i, f"name {i}", i * 0.5) for i in range(10_000)]

        def executemany(i: int) -> None:
            d.many("INSERT INTO sync_sink VALUES (%s, %s, %s)", rows)

        return executemany
    if workload == "copy_out":

        def copy_out(i: int) -> None:
            if (
                d.copy_out("COPY (SELECT g, g::text FROM generate_series(1, 100000) g) TO STDOUT")
                < 1_000_000
            ):
                raise AssertionError("copy_out: too little data")

        return copy_out
    raise ValueError(workload)


def _threads(driver: str, dsn: str, n: int) -> dict:
    drivers = [open_driver(driver, dsn) for _ in range(8)]
    try:
        for d in drivers:
            d.one("SELECT %s::int", (0,))
        errors: list[BaseException] = []

        def work(d: Any) -> None:
            try:
                for i in range(n):
                    if d.one("SELECT %s::int", (i,))[0] != i:
                        raise AssertionError("tiny: wrong value")
            except BaseException as e:  # noqa: BLE001 - reported by the parent
                errors.append(e)

        threads = [threading.Thread(target=work, args=(d,)) for d in drivers]
        t0, c0 = time.perf_counter(), time.process_time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        result = {"ops": n * 8, "cpu": time.process_time() - c0, "wall": time.perf_counter() - t0}
        if errors:
            raise errors[0]
        return result
    finally:
        for d in drivers:
            d.close()


# ------------------------------------------------------------------ the run (parent)


def load_fixtures(dsn: str) -> None:
    import ferropg.sync

    with ferropg.sync.connect(dsn) as con:
        con.execute(
            "DROP TABLE IF EXISTS sync_bench, sync_sink;"
            "CREATE UNLOGGED TABLE sync_bench (id int PRIMARY KEY, name text, qty int,"
            " price numeric(12,2), ok bool, created timestamptz, note text, score float8,"
            " code int8, tag text);"
            "CREATE UNLOGGED TABLE sync_sink (id int, name text, v float8)"
        )
        con.execute(
            "INSERT INTO sync_bench SELECT g, 'name ' || g, g % 100, g * 1.25, g % 2 = 0,"
            " now() - g * interval '1 minute', repeat('x', g % 40), g / 7.0, g * 1000,"
            " 'tag' || (g % 10) FROM generate_series(1, $1::int) g",
            ROWS,
        )
        con.execute("VACUUM ANALYZE sync_bench")


def worker_cell(driver: str, workload: str, dsn: str, quick: bool) -> dict:
    cmd = [sys.executable, __file__, "--worker", driver, workload, dsn] + (
        ["--quick"] if quick else []
    )
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        return {"status": "fail", "error": (p.stderr.strip().splitlines() or ["?"])[-1][-200:]}
    return {"status": "ok", **json.loads(p.stdout)}


def pgbench_cpu(dsn: str, seconds: int) -> float | None:
    """pgbench's client CPU per query (µs), as in benches/run.py."""
    import run  # the async harness, next to this file

    exe = run.find_pgbench()
    if exe is None:
        return None
    res = run.pgbench_cell(exe, dsn, seconds)
    return res["cpu"] / res["ops"] * 1e6 if res.get("status") == "ok" else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--driver", action="append", choices=DRIVERS)
    ap.add_argument("--workload", action="append", choices=WORKLOADS)
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    ap.add_argument("--worker", nargs=3, metavar=("DRIVER", "WORKLOAD", "DSN"))
    args = ap.parse_args()
    if args.worker:
        driver, workload, dsn = args.worker
        print(json.dumps(run_cell(driver, workload, dsn, args.quick)))
        return 0
    rounds = args.rounds or (1 if args.quick else 3)
    drivers = [
        d for d in (args.driver or DRIVERS) if importlib.util.find_spec(d.split(".")[0]) is not None
    ]
    workloads = args.workload or list(WORKLOADS)
    from ferropg.cluster import TempCluster

    settings = {"fsync": "off", "synchronous_commit": "off", "autovacuum": "off", "jit": "off"}
    with TempCluster(server_settings=settings) as cluster:
        dsn = f"postgresql://postgres@/postgres?host={cluster.socket_dir}&port={cluster.port}"
        log(f"server: {dsn}; loading fixtures")
        load_fixtures(dsn)
        results: dict = {w: {d: [] for d in drivers} for w in workloads}
        pgbench: list = []
        for r in range(1, rounds + 1):
            pgbench.append(pgbench_cpu(dsn, 1 if args.quick else 5))
            log(f"round {r}: pgbench {pgbench[-1] and round(pgbench[-1], 1)} µs CPU/query")
            for w in workloads:
                for d in drivers:
                    cell = worker_cell(d, w, dsn, args.quick)
                    results[w][d].append(cell)
                    if cell["status"] == "ok":
                        log(
                            f"r{r} {w} {d}: {cell['cpu'] / cell['ops'] * 1e6:.1f} µs CPU/op, "
                            f"{cell['ops'] / cell['wall']:.0f} ops/s"
                        )
                    else:
                        log(f"r{r} {w} {d}: FAILED {cell['error']}")
    report = render(results, drivers, workloads, pgbench, rounds)
    print(report)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "pgbench": pgbench, "nproc": os.cpu_count()}, f)
    return 0


def render(results: dict, drivers: list, workloads: list, pgbench: list, rounds: int) -> str:
    lines = [
        f"Synchronous drivers, {rounds} round(s), median shown; {os.cpu_count()} CPUs.",
        "pgbench (C) client CPU per query in each round, µs: "
        + " · ".join("n/a" if p is None else f"{p:.1f}" for p in pgbench),
        "",
        "Client CPU per op (µs), with the ratio to psycopg 3; `tiny_8_threads` also gives "
        "the combined throughput (ops/s).",
        "",
        "| workload | " + " | ".join(drivers) + " |",
        "|---|" + "---:|" * len(drivers),
    ]
    for w in workloads:
        ref = _median(results[w].get(REFERENCE, []), "cpu")
        cells = []
        for d in drivers:
            cpu = _median(results[w][d], "cpu")
            if cpu is None:
                cells.append("FAIL")
                continue
            text = f"{cpu:.1f}"
            if ref:
                text += f" ({cpu / ref:.2f}×)"
            if w == "tiny_8_threads":
                text += f", {_median(results[w][d], 'rate'):.0f}/s"
            cells.append(text)
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _median(cells: list, what: str) -> float | None:
    ok = [c for c in cells if c.get("status") == "ok"]
    if not ok:
        return None
    if what == "cpu":
        return statistics.median(c["cpu"] / c["ops"] * 1e6 for c in ok)
    return statistics.median(c["ops"] / c["wall"] for c in ok)


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark worker: one driver on one event loop, in its own process.

Started by ``run.py`` as ``bench_worker.py --driver NAME --loop uvloop|asyncio --dsn DSN``;
reads one JSON command per line on stdin (``{"workload": ..., "ops": ..., ...}``), runs the
cell on a fresh connection and answers one JSON line on stdout. Being its own process, its
``time.process_time()`` is that driver's client CPU (all threads, e.g. psqlpy's tokio
workers) and its garbage collector sees only that driver's objects.

``--memory N`` instead fetches an N-row result once and prints the peak RSS (VmHWM, and
ru_maxrss).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import time
import traceback
from typing import Any

import bench_common as bc
from bench_drivers import Unsupported, load

_CLK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system) of *pid* (a server backend), or None if unreadable.

    ``/proc/<pid>/schedstat`` (the scheduler's run time, in nanoseconds) where the kernel
    keeps it, else utime + stime from ``/proc/<pid>/stat`` (10 ms ticks). A backend is one
    thread, so both count all of its CPU; the nanoseconds matter when a pool's ten backends
    are summed, each one's tick rounding adding up.
    """
    if pid is None:
        return None
    if _SCHEDSTAT:
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                return int(f.read().split()[0]) / 1e9
        except (OSError, IndexError, ValueError):
            pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK
    except (OSError, IndexError, ValueError):
        return None


def _has_schedstat() -> bool:
    """Whether ``/proc/<pid>/schedstat`` counts run time here (0 when the kernel's
    scheduler statistics are off): checked on this process, which has run."""
    try:
        with open(f"/proc/{os.getpid()}/schedstat") as f:
            return int(f.read().split()[0]) > 0
    except (OSError, IndexError, ValueError):
        return False


_SCHEDSTAT = _has_schedstat()


def _procs_cpu(pids: list[int] | None) -> float | None:
    """Summed CPU seconds of *pids* (a pool's backends); None if any is unreadable."""
    if not pids:
        return None
    total = 0.0
    for pid in pids:
        t = _proc_cpu(pid)
        if t is None:
            return None
        total += t
    return total


def _machine_busy() -> float | None:
    """Busy CPU seconds of the whole machine so far (from /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / _CLK
    except (OSError, IndexError, ValueError):
        return None


def calibrate() -> float:
    """CPU seconds of a fixed pure-Python loop (~15 ms on an idle 2020s core).

    On a shared machine the same work costs more CPU time when the sibling hardware
    thread or the host is busy; the ratio of this figure to the run's best one says how
    much slower the CPU was around a cell.
    """
    c = time.process_time()
    s = 0
    for i in range(300_000):
        s += i * i
    return time.process_time() - c


class Timer:
    """Accumulates client CPU, wall time and server backend CPU of the timed regions only.

    The backends' CPU (one backend, or every backend of a pool, summed) is read just
    outside the client's timed region, so warm-ups and the checks' own queries are not
    counted.
    """

    __slots__ = ("cpu", "wall", "server", "pids", "_c", "_w", "_s")

    def __init__(self, pids: int | list[int] | None = None) -> None:
        if isinstance(pids, int):
            pids = [pids]
        self.cpu = 0.0
        self.wall = 0.0
        self.server: float | None = 0.0 if _procs_cpu(pids) is not None else None
        self.pids = pids if self.server is not None else None

    def start(self) -> None:
        if self.pids is not None:
            self._s = _procs_cpu(self.pids)
        self._w = time.perf_counter()
        self._c = time.process_time()

    def stop(self) -> None:
        self.cpu += time.process_time() - self._c
        self.wall += time.perf_counter() - self._w
        if self.pids is not None:
            s = _procs_cpu(self.pids)
            if s is None or self._s is None or self.server is None:
                self.server = self.pids = None
            else:
                self.server += s - self._s

    def forget_server(self) -> None:
        """The backends measured are not all the ones that did the work: no server CPU."""
        self.server = self.pids = None


_MIXED: dict[str, Any] = {}


def mixed_crcs() -> list[int]:
    """crc of every bench_mixed row as inserted, indexed by id - 1."""
    if "crcs" not in _MIXED:
        canons = bc.canons_for([t for _, t in bc.MIXED_COLUMNS])
        _MIXED["crcs"] = [bc.row_crc(r, canons) for r in bc.mixed_rows()]
    return _MIXED["crcs"]


_RECORDS: dict[int, tuple[list[tuple], list]] = {}


def write_data(n: int) -> tuple[list[tuple], list]:
    if n not in _RECORDS:
        rows = bc.write_rows(n)
        _RECORDS[n] = (rows, bc.write_expectation(rows))
    return _RECORDS[n]


class Cell:
    def __init__(self, ad: Any, con: Any, cmd: dict, pid: int | list[int] | None) -> None:
        self.ad = ad
        self.con = con
        self.cmd = cmd
        self.ops = cmd["ops"]
        self.warm = cmd["warm"]
        self.timer = Timer(pid)
        self.types: list[str] | None = None
        self.rows_per_op: float | None = None

    def note_types(self, row: Any) -> None:
        if self.types is None:
            self.types = [type(v).__name__ for v in row]

    # ---------------------------------------------------------------- workloads ----

    async def tiny(self) -> None:
        f = self.ad.fetcher(self.con, "SELECT $1::int4")
        for i in range(self.warm):
            await f(i)
        ops = self.ops
        n = s = 0
        gc.collect()
        self.timer.start()
        for i in range(ops):
            rows = await f(i)
            s += rows[0][0]
            n += len(rows)
        self.timer.stop()
        self.note_types(rows[0])
        if n != ops or s != ops * (ops - 1) // 2:
            raise bc.CheckError(f"tiny: {n} rows, sum {s}; expected {ops}, {ops * (ops - 1) // 2}")
        bc.c_int(rows[0][0])

    async def pool(self) -> None:
        """``tasks`` tasks share a pool of ``pool_size`` (``self.con`` is the pool): each op
        acquires a connection, runs the tiny query and releases it."""
        f = self.ad.pool_fetcher(self.con, "SELECT $1::int4")
        tasks = self.cmd["tasks"]
        ops = self.ops

        async def warm(k: int) -> None:
            for i in range(k, self.warm, tasks):
                rows = await f(i)
                if rows[0][0] != i:
                    raise bc.CheckError(f"pool: warm-up op {i} read {rows[0][0]!r}")

        async def run(k: int) -> tuple[int, int, Any]:
            n = s = 0
            rows = None
            for i in range(k, ops, tasks):
                rows = await f(i)
                s += rows[0][0]
                n += len(rows)
            return n, s, rows

        # Every task at once, so that every connection of the pool prepares the statement.
        await asyncio.gather(*(warm(k) for k in range(tasks)))
        gc.collect()
        self.timer.start()
        done = await asyncio.gather(*(run(k) for k in range(tasks)))
        self.timer.stop()
        n = sum(d[0] for d in done)
        s = sum(d[1] for d in done)
        self.note_types(done[0][2][0])
        if n != ops or s != ops * (ops - 1) // 2:
            raise bc.CheckError(f"pool: {n} rows, sum {s}; expected {ops}, {ops * (ops - 1) // 2}")
        bc.c_int(done[0][2][0][0])

    async def pk_row(self) -> None:
        f = self.ad.fetcher(self.con, bc.MIXED_SELECT + " WHERE id = $1::int4")
        ids = [(i * 7919) % bc.N_MIXED + 1 for i in range(self.ops)]
        for i in range(self.warm):
            await f(ids[i % len(ids)])
        crcs = mixed_crcs()
        keep = []
        append = keep.append
        touch = bc.touch
        gc.collect()
        self.timer.start()
        for k in ids:
            rows = await f(k)
            touch(rows)
            append(rows)
        self.timer.stop()
        # every value of every op checked afterwards
        canons = bc.canons_for([t for _, t in bc.MIXED_COLUMNS])
        self.note_types(keep[0][0])
        for k, rows in zip(ids, keep, strict=True):
            if len(rows) != 1:
                raise bc.CheckError(f"pk_row: {len(rows)} rows for id {k}")
            if bc.row_crc(rows[0], canons) != crcs[k - 1]:
                raise bc.CheckError(f"pk_row: values of id {k} differ from what was inserted")

    async def _multi(self, sql: str, args: tuple, check: Any) -> None:
        f = self.ad.fetcher(self.con, sql)
        for _ in range(self.warm):
            check(await f(*args))
        gc.collect()
        t = self.timer
        touch = bc.touch
        for _ in range(self.ops):
            t.start()
            rows = await f(*args)
            touch(rows)
            t.stop()
            check(rows)  # every op, outside the timed region
            del rows

    def _checker(self, types: list[str], expected: tuple[int, int], what: str) -> Any:
        canons = bc.canons_for(types)

        def check(rows: Any) -> None:
            if len(rows):
                self.note_types(rows[0])
            got = bc.checksum(rows, canons)
            if got != expected:
                raise bc.CheckError(
                    f"{what}: {got[0]} rows / checksum {got[1]:x}, expected {expected[0]} / {expected[1]:x}"
                )

        return check

    async def wide_1000(self) -> None:
        types = [t for _, t in bc.MIXED_COLUMNS]
        crcs = mixed_crcs()
        expected = (1000, sum(crcs[:1000]) & bc.MASK)
        self.rows_per_op = 1000
        await self._multi(
            bc.MIXED_SELECT + " WHERE id <= $1::int4",
            (1000,),
            self._checker(types, expected, "wide_1000"),
        )

    async def decode(self, kind: str) -> None:
        sqltype, table = bc.DECODE_KINDS[kind]
        types = [sqltype] * 10
        canons = bc.canons_for(types)
        expected = bc.checksum(bc.decode_rows(kind), canons)
        cols = ", ".join(f"c{i}" for i in range(10))
        self.rows_per_op = bc.N_DECODE
        await self._multi(
            f"SELECT {cols} FROM {bc.SCHEMA}.{table}",
            (),
            self._checker(types, expected, f"decode_{kind}"),
        )

    async def pg_type(self) -> None:
        count, oidsum, crc = self.cmd["pg_type_expect"]
        self.rows_per_op = count

        def check(rows: Any) -> None:
            if len(rows) != count:
                raise bc.CheckError(f"pg_type: {len(rows)} rows, expected {count}")
            self.note_types(rows[0])
            s = c = 0
            for r in rows:
                o = r[0]
                s += o
                c += bc.row_crc((o, r[1]), [bc.c_int, bc.c_text])
                if len(r) != self.cmd["pg_type_ncols"]:
                    raise bc.CheckError(f"pg_type: {len(r)} columns")
            if s != oidsum or c & bc.MASK != crc:
                raise bc.CheckError("pg_type: oid/typname checksum differs")

        await self._multi("SELECT * FROM pg_type", (), check)

    async def series_100k(self) -> None:
        n = 100_000
        self.rows_per_op = n

        def check(rows: Any) -> None:
            if len(rows) != n:
                raise bc.CheckError(f"series: {len(rows)} rows")
            vals = [r[0] for r in rows]
            if {type(v) for v in vals} != {int} or sum(vals) != n * (n + 1) // 2:
                raise bc.CheckError("series: values differ")
            self.note_types(rows[0])

        await self._multi("SELECT g FROM generate_series(1, $1::int4) g", (n,), check)

    async def _write(self, n: int, table: str, run: Any) -> None:
        rows, expect = write_data(n)
        warm_rows, warm_expect = write_data(min(n, 1000))
        full = f"{bc.SCHEMA}.{table}"
        check_sql = bc.WRITE_CHECK_SQL.format(table=full)

        async def one(src: list, data: Any, expected: list, timed: bool) -> None:
            await self.ad.execute(self.con, f"TRUNCATE {full}")
            if timed:
                gc.collect()
                self.timer.start()
            await run(data)
            if timed:
                self.timer.stop()
            got = list(await self.ad.fetchrow(self.con, check_sql))
            if got != expected:
                raise bc.CheckError(f"{table}: server has {got}, expected {expected}")
            want = src[777 % len(src)]
            sample = await self.ad.fetchrow(
                self.con, f"SELECT a, b, c, d FROM {full} WHERE a = $1::int4", want[0]
            )
            if tuple(sample) != want:
                raise bc.CheckError(f"{table}: row {want[0]} reads back as {tuple(sample)}")

        prepped_warm = self._prep(warm_rows)
        for _ in range(self.warm):
            await one(warm_rows, prepped_warm, warm_expect, False)
        prepped = self._prep(rows)
        self.rows_per_op = n
        for _ in range(self.ops):
            await one(rows, prepped, expect, True)

    async def executemany_10k(self) -> None:
        sql = f"INSERT INTO {bc.SCHEMA}.em_target (a, b, c, d) VALUES ($1, $2, $3, $4)"
        self._prep = self.ad.prep_many

        async def run(data: Any) -> None:
            await self.ad.executemany(self.con, sql, data)

        await self._write(self.cmd["rows"], "em_target", run)

    async def copy_1m(self) -> None:
        self._prep = self.ad.prep_copy
        cols = [c for c, _ in bc.WRITE_COLUMNS]

        async def run(data: Any) -> None:
            await self.ad.copy(self.con, bc.SCHEMA, "copy_target", cols, bc.WRITE_TYPES, data)

        await self._write(self.cmd["rows"], "copy_target", run)


async def run_cell(ad: Any, dsn: str, cmd: dict) -> dict:
    wl = cmd["workload"]
    if wl == "pool":
        return await run_pool_cell(ad, dsn, cmd)
    con = await ad.connect(dsn)
    try:
        pid = await ad.fetchval(con, "SELECT pg_backend_pid()") if cmd.get("server_cpu") else None
        await ad.setup(con, wl)
        cell = Cell(ad, con, cmd, pid)
        if wl.startswith("decode_"):
            coro = cell.decode(wl[len("decode_") :])
        else:
            coro = getattr(cell, wl)()
        res = await _measure(cell, coro, [pid] if pid is not None else None)
    finally:
        await ad.close(con)
    return res


async def run_pool_cell(ad: Any, dsn: str, cmd: dict) -> dict:
    """The pool workload: a pool of ``pool_size`` (min = max where the driver has a
    minimum), whose backends' CPU is summed; they are listed again after the timed region,
    and if the pool replaced one meanwhile the cell has no server CPU figure."""
    size = cmd["pool_size"]
    pool = await ad.create_pool(dsn, size, cmd.get("pool_reset") or "default")
    try:
        pids = await ad.pool_backend_pids(pool, size) if cmd.get("server_cpu") else None
        if pids is not None and len(set(pids)) != size:
            raise bc.CheckError(f"pool: {len(set(pids))} distinct backends, expected {size}")
        cell = Cell(ad, pool, cmd, pids)
        res = await _measure(cell, cell.pool(), pids)
        if pids is not None:
            after = await ad.pool_backend_pids(pool, size)
            if sorted(after) != sorted(pids):
                cell.timer.forget_server()
                res.pop("server_cpu", None)
                res["note"] = "the pool replaced connections during the cell: no server CPU"
    finally:
        await ad.close_pool(pool)
    res["pool_size"] = size
    res["tasks"] = cmd["tasks"]
    return res


async def _measure(cell: Cell, coro: Any, pids: list[int] | None) -> dict:
    """Runs the cell's workload; its timed figures, with the machine's around it."""
    cal0 = calibrate()
    s0, m0, c0 = _procs_cpu(pids), _machine_busy(), time.process_time()
    w0 = time.perf_counter()
    await coro
    s1, m1, c1 = _procs_cpu(pids), _machine_busy(), time.process_time()
    w1 = time.perf_counter()
    cal1 = calibrate()
    res = {
        "status": "ok",
        "cpu": cell.timer.cpu,
        "wall": cell.timer.wall,
        "ops": cell.ops,
        "rows_per_op": cell.rows_per_op,
        "types": cell.types,
        "cell_wall": w1 - w0,
        "calibration": (cal0 + cal1) / 2,
    }
    if cell.timer.server is not None:
        res["server_cpu"] = cell.timer.server  # timed regions only
    if m0 is not None and m1 is not None:
        # machine CPU used by neither this process nor its backends over the whole cell
        backend = (s1 - s0) if s0 is not None and s1 is not None else 0.0
        res["other_cpu"] = (m1 - m0) - (c1 - c0) - backend
        res["other_cores"] = res["other_cpu"] / max(w1 - w0, 1e-9)
    return res


def make_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def serve(driver: str, loop_name: str, dsn: str) -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # a driver printing anything must not corrupt the protocol
    try:
        ad = load(driver)
        loop = make_loop(loop_name)
        asyncio.set_event_loop(loop)
        hello = {"status": "ready", "version": ad.version, "module": ad.mod.__file__}
        native = sys.modules.get(f"{driver}._native")
        if native is not None and getattr(native, "__file__", None):
            st = os.stat(native.__file__)
            hello["native"] = {
                "path": native.__file__,
                "size": st.st_size,
                "mtime": time.strftime("%Y-%m-%d %H:%M", time.gmtime(st.st_mtime)),
            }
    except Exception as e:
        hello = {"status": "error", "error": f"{type(e).__name__}: {e}"}
    out.write(json.dumps(hello) + "\n")
    out.flush()
    if hello["status"] != "ready":
        return
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        try:
            res = loop.run_until_complete(run_cell(ad, dsn, cmd))
        except Unsupported as e:
            res = {"status": "n/a", "error": str(e)}
        except bc.CheckError as e:
            res = {"status": "fail", "error": str(e)}
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            res = {"status": "fail", "error": f"{type(e).__name__}: {str(e)[:200]}"}
        out.write(json.dumps(res) + "\n")
        out.flush()


def _vm_kb(field: str) -> int | None:
    """VmRSS / VmHWM of this process in KiB (Linux), else None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


async def memory(ad: Any, dsn: str, n: int) -> dict:
    con = await ad.connect(dsn)
    try:
        f = ad.fetcher(con, bc.MEMORY_SQL)
        rows = await f(10)  # codecs, statement cache, buffers
        del rows
        gc.collect()
        before = _vm_kb("VmRSS")
        maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        c0, w0 = time.process_time(), time.perf_counter()
        rows = await f(n)
        bc.touch(rows)
        c1, w1 = time.process_time(), time.perf_counter()
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # ru_maxrss survives execve on Linux (a child starts with its parent's peak), so
        # the peak of this process image is VmHWM when /proc has it
        peak = _vm_kb("VmHWM") or maxrss
        if len(rows) != n or sum(r[0] for r in rows) != n * (n + 1) // 2:
            raise bc.CheckError(f"memory: {len(rows)} rows or wrong values")
        del rows
    finally:
        await ad.close(con)
    return {
        "status": "ok",
        "rows": n,
        "rss_before_kb": before,  # current RSS just before the fetch
        "maxrss_before_kb": maxrss_before,
        "rss_peak_kb": peak,  # VmHWM (or ru_maxrss) after the fetch
        "ru_maxrss_kb": maxrss,
        "cpu": c1 - c0,
        "wall": w1 - w0,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--driver", required=True)
    p.add_argument("--loop", default="asyncio", choices=("asyncio", "uvloop"))
    p.add_argument("--dsn", required=True)
    p.add_argument("--memory", type=int, help="fetch this many rows once, print peak RSS")
    a = p.parse_args()
    if a.memory is None:
        serve(a.driver, a.loop, a.dsn)
        return
    try:
        ad = load(a.driver)
        loop = make_loop(a.loop)
        res = loop.run_until_complete(memory(ad, a.dsn, a.memory))
    except Exception as e:
        res = {"status": "fail", "error": f"{type(e).__name__}: {str(e)[:200]}"}
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()

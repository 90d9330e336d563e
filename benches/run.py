"""Side-by-side client benchmarks: ferropg, asyncpg, psycopg 3 (async, binary), psqlpy, pgbench.

One run measures every workload on every installed driver, under uvloop and under the default
asyncio loop. Each (driver, loop) pair is a separate worker process (``bench_worker.py``), so
``time.process_time()`` there is exactly that driver's client CPU (all threads); the cells of a
workload are run one at a time, interleaving drivers and loops, for N rounds, and the median
of the rounds is reported. Every result is checked (see ``bench_common.py``); a driver that
fails a workload is reported as failed, not left out.

    python benches/run.py                         # temporary cluster (Unix socket), everything, 3 rounds
    python benches/run.py --tcp                   # the same over TCP 127.0.0.1
    python benches/run.py --quick                 # smoke run: 1 round, small sizes
    PGDSN=postgresql://... python benches/run.py --rounds 5 --workload tiny --loop uvloop
    python benches/run.py --json out.json --markdown out.md
    python benches/run.py --workload pool --pool-reset rollback   # ferropg's pool without its reset query
    python benches/run.py --pgbouncer             # tiny and pool, direct and through pgbouncer

Needs ferropg and asyncpg importable (asyncpg is the reference and loads the fixtures);
psycopg, psqlpy, uvloop and pgbench are used when present. With PGDSN set, the schema
``ferropg_bench`` in that database is dropped and recreated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.util
import json
import os
import platform
import re
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import bench_common as bc

HERE = os.path.dirname(os.path.abspath(__file__))
ALL_DRIVERS = ("ferropg", "asyncpg", "psycopg", "psqlpy")
ALL_LOOPS = ("uvloop", "asyncio")
REFERENCE = "asyncpg"

#: Server settings of the temporary cluster: benchmark-tuned and unsafe (as in the baseline).
SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "autovacuum": "off",
    "jit": "off",
    "shared_buffers": "512MB",
    "max_connections": "40",
}


_T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------ fixtures ----


async def load_fixtures(dsn: str) -> dict:
    """Create the schema and tables and load the data (with asyncpg, the reference)."""
    import asyncpg

    s = bc.SCHEMA
    con = await asyncpg.connect(dsn)
    try:
        await con.execute(f"DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s}")
        await con.execute(bc.COMPOSITE_DDL)
        cols = ", ".join(
            f"{c} {t}{' PRIMARY KEY' if c == 'id' else ''}" for c, t in bc.MIXED_COLUMNS
        )
        await con.execute(f"CREATE TABLE {s}.bench_mixed ({cols})")
        rows = [r[:7] + (json.dumps(r[7]),) + r[8:] for r in bc.mixed_rows()]
        await con.copy_records_to_table("bench_mixed", records=rows, schema_name=s)
        for kind, (sqltype, table) in bc.DECODE_KINDS.items():
            cols = ", ".join(f"c{i} {sqltype}" for i in range(10))
            await con.execute(f"CREATE TABLE {s}.{table} ({cols})")
            rows = bc.decode_rows(kind)
            if kind == "jsonb":
                rows = [tuple(json.dumps(v) for v in r) for r in rows]
            await con.copy_records_to_table(table, records=rows, schema_name=s)
        wcols = ", ".join(f"{c} {t}" for c, t in bc.WRITE_COLUMNS)
        for table in ("em_target", "copy_target"):
            await con.execute(f"CREATE UNLOGGED TABLE {s}.{table} ({wcols})")
        await con.execute("VACUUM (FREEZE, ANALYZE)")
        pg = await con.fetch("SELECT oid::int8, typname::text FROM pg_type")
        crc = sum(bc.row_crc((r[0], r[1]), [bc.c_int, bc.c_text]) for r in pg) & bc.MASK
        ncols = len((await con.fetch("SELECT * FROM pg_type LIMIT 1"))[0])
        version = await con.fetchval("SHOW server_version")
        return {
            "pg_type_expect": [len(pg), sum(r[0] for r in pg), crc],
            "pg_type_ncols": ncols,
            "server_version": version,
        }
    finally:
        await con.close()


# ------------------------------------------------------------------------- workers ----


#: The column of a driver whose cells run through pgbouncer (``--pgbouncer``).
VIA_POOLER = " via pgbouncer"


class Worker:
    """A ``bench_worker.py`` process for one (driver, loop); *behind_pooler*: its DSN is
    a transaction-mode pgbouncer's, and the peers get the settings their documentation
    gives for that (ferropg none)."""

    def __init__(self, driver: str, loop: str, dsn: str, behind_pooler: bool = False) -> None:
        self.driver, self.loop, self.dsn = driver, loop, dsn
        self.behind_pooler = behind_pooler
        self.proc: subprocess.Popen[str] | None = None
        self.hello: dict = {}

    def _spawn(self, timeout: float) -> dict:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                os.path.join(HERE, "bench_worker.py"),
                "--driver",
                self.driver,
                "--loop",
                self.loop,
                "--dsn",
                self.dsn,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=HERE,
            env={**os.environ, "FERROPG_BENCH_BEHIND_POOLER": "1" if self.behind_pooler else ""},
        )
        self.hello = self._read(timeout)
        return self.hello

    def _read(self, timeout: float) -> dict:
        assert self.proc is not None and self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
        sel.close()
        if not ready:
            self.kill()
            return {"status": "fail", "error": f"timeout after {timeout:.0f} s (worker killed)"}
        line = self.proc.stdout.readline()
        if not line:
            rc = self.proc.wait()
            self.proc = None
            return {"status": "fail", "error": f"worker exited (rc {rc})"}
        return json.loads(line)

    def run(self, cmd: dict, timeout: float) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            hello = self._spawn(60)
            if hello.get("status") != "ready":
                return hello
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read(timeout)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def close(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None


# ------------------------------------------------------------------------- pgbench ----


def find_pgbench() -> str | None:
    exe = shutil.which("pgbench")
    if exe:
        return exe
    with contextlib.suppress(Exception):
        from ferropg import cluster

        cand = os.path.join(cluster.find_bindir(), "pgbench")
        if os.access(cand, os.X_OK):
            return cand
    return None


def run_pgbench(exe: str, dsn: str, seconds: int) -> dict:
    """``pgbench -n -M prepared -c 1 -j 1 -T seconds`` on ``SELECT :x::int4``."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write("\\set x random(1, 1000000)\nSELECT :x::int4;\n")
        script = f.name
    try:
        p = subprocess.Popen(
            [
                exe,
                "-n",
                "-M",
                "prepared",
                "-c",
                "1",
                "-j",
                "1",
                "-T",
                str(seconds),
                "-f",
                script,
                dsn,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, err = p.communicate()  # reaps it: its rusage lands in RUSAGE_CHILDREN
    finally:
        os.unlink(script)
    if p.returncode != 0:
        return {"status": "fail", "error": err.strip()[-200:]}
    m_n = re.search(r"number of transactions actually processed: (\d+)", out)
    m_tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    if not (m_n and m_tps):
        return {"status": "fail", "error": "cannot parse pgbench output"}
    return {"status": "ok", "ops": int(m_n.group(1)), "tps": float(m_tps.group(1))}


def pgbench_cell(exe: str, dsn: str, seconds: int) -> dict:
    import resource

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = run_pgbench(exe, dsn, seconds)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res["status"] == "ok":
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        res["cpu"] = cpu
        res["wall"] = res["ops"] / res["tps"]
    return res


# ----------------------------------------------------------------------- reporting ----


def fmt_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e4:
        return f"{x / 1e3:.1f}k"
    if x >= 1e3:
        return f"{x / 1e3:.2f}k"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_time(sec: float) -> str:
    us = sec * 1e6
    if us < 1000:
        return f"{us:.1f} µs"
    if us < 1e6:
        return f"{us / 1e3:.2f} ms"
    return f"{us / 1e6:.2f} s"


_CAL_BEST: list[float] = []


def summarize(cells: list[dict]) -> dict | None:
    ok = [c for c in cells if c.get("status") == "ok"]
    if not ok:
        return None
    cpu = [c["cpu"] / c["ops"] for c in ok]
    wall = [c["wall"] / c["ops"] for c in ok]
    s = {
        "n": len(ok),
        "cpu_op": statistics.median(cpu),
        "cpu_op_min": min(cpu),
        "wall_op": statistics.median(wall),
        "ops_s": statistics.median(c["ops"] / c["wall"] for c in ok),
        "cpu_spread": (max(cpu) - min(cpu)) / statistics.median(cpu) if len(cpu) > 1 else 0.0,
        "rows_per_op": ok[0].get("rows_per_op"),
        "types": ok[0].get("types"),
    }
    srv = [c["server_cpu"] / c["ops"] for c in ok if "server_cpu" in c]
    if srv:
        s["server_op"] = statistics.median(srv)
    other = [c["other_cores"] for c in ok if "other_cores" in c]
    if other:
        s["other_cores"] = statistics.median(other)
    cal = [c["calibration"] for c in ok if "calibration" in c]
    if cal and _CAL_BEST:
        s["slowdown"] = statistics.median(cal) / _CAL_BEST[0]
    return s


def failure(cells: list[dict]) -> str | None:
    for c in cells:
        if c.get("status") != "ok":
            return f"{c.get('status', 'fail')}: {c.get('error', '?')}"
    return None


def label(wl: str, meta: dict) -> str:
    """A workload's name in the tables; says when ferropg's pool ran with another reset."""
    if wl == "pool" and meta.get("pool_reset", "default") != "default":
        return f"pool (ferropg reset={meta['pool_reset']})"
    return wl


def render(
    meta: dict, results: dict, pgb: list[dict], mem: dict, drivers: list, loops: list
) -> str:
    out: list[str] = []
    w = out.append
    cals = [c["calibration"] for v in results.values() for c in v if "calibration" in c]
    _CAL_BEST[:] = [min(cals)] if cals else []
    w(
        f"Run {meta['started']} UTC, {meta['elapsed']:.0f} s; {meta['rounds']} round(s), median shown."
    )
    w("")
    w(f"- Machine: {meta['machine']}")
    w(f"- PostgreSQL {meta['server_version']} ({meta['server']}); Python {meta['python']}")
    w("- Drivers: " + "; ".join(f"{d} {v}" for d, v in meta["versions"].items()))
    w("")
    w(
        "Cell: ops/s (× asyncpg) · client CPU per op (× asyncpg). Higher ops/s and lower CPU "
        "are better; ratios are against asyncpg on the same loop. `FAIL`/`n/a` cells are "
        "explained below each table."
    )
    if "pool" in meta["workloads"]:
        w("")
        w(
            "`pool`: 10 tasks share a pool of 10 connections (min = max = 10; psqlpy's pool "
            "has no minimum and fills up to its maximum of 10), each op acquires, runs the "
            "tiny query and releases; server CPU sums the pool's 10 backends. Pools: "
            "`create_pool` (ferropg"
            + (
                f", reset={meta['pool_reset']}"
                if meta.get("pool_reset", "default") != "default"
                else ""
            )
            + ", asyncpg), `psycopg_pool.AsyncConnectionPool`, `psqlpy.ConnectionPool`."
        )
    for loop in loops:
        w("")
        w(f"### {loop}")
        w("")
        cols = list(drivers) + (["pgbench (C, -c 1)"] if pgb else [])
        w("| workload | " + " | ".join(cols) + " |")
        w("|---|" + "---:|" * len(cols))
        notes: list[str] = []
        for wl in meta["workloads"]:
            ref = summarize(results.get((wl, REFERENCE, loop), []))
            row = [label(wl, meta)]
            for d in drivers:
                cells = results.get((wl, d, loop), [])
                s = summarize(cells)
                fail = failure(cells)
                if s is None or fail:
                    reason = fail or "not run"
                    kind = "n/a" if reason.startswith("n/a") else "FAIL"
                    row.append(f"**{kind}**")
                    notes.append(f"- {wl} / {d}: {reason}")
                    continue
                txt = f"{fmt_rate(s['ops_s'])}/s"
                if ref and d != REFERENCE:
                    txt += f" ({s['ops_s'] / ref['ops_s']:.2f}x)"
                txt += f" · {fmt_time(s['cpu_op'])}"
                if ref and d != REFERENCE:
                    txt += f" ({s['cpu_op'] / ref['cpu_op']:.2f}x)"
                row.append(txt)
            if pgb:
                if wl == "tiny":
                    ok = [p for p in pgb if p.get("status") == "ok"]
                    if ok:
                        tps = statistics.median(p["tps"] for p in ok)
                        cpu = statistics.median(p["cpu"] / p["ops"] for p in ok)
                        txt = f"{fmt_rate(tps)}/s"
                        if ref:
                            txt += f" ({tps / ref['ops_s']:.2f}x)"
                        txt += f" · {fmt_time(cpu)}"
                        if ref:
                            txt += f" ({cpu / ref['cpu_op']:.2f}x)"
                        row.append(txt)
                    else:
                        row.append("**FAIL**")
                        notes.append(f"- pgbench: {pgb[0].get('error')}")
                else:
                    row.append("")
            w("| " + " | ".join(row) + " |")
        if notes:
            w("")
            w("\n".join(notes))
    # best round
    w("")
    w("### Best round: client CPU per op (× asyncpg's best round)")
    w("")
    w(
        "On a shared machine noise only ever adds CPU time, so the best of the rounds is the "
        "closest estimate of a driver's own cost (the medians above include the neighbours)."
    )
    w("")
    cols = [f"{d} ({lp})" for lp in loops for d in drivers]
    if pgb:
        cols.append("pgbench (C)")
    w("| workload | " + " | ".join(cols) + " |")
    w("|---|" + "---:|" * len(cols))
    ok_pgb = [p for p in pgb if p.get("status") == "ok"]
    for wl in meta["workloads"]:
        row = [label(wl, meta)]
        for lp in loops:
            ref = summarize(results.get((wl, REFERENCE, lp), []))
            for d in drivers:
                cells = results.get((wl, d, lp), [])
                s = summarize(cells)
                if s is None or failure(cells):
                    row.append("FAIL")
                    continue
                txt = fmt_time(s["cpu_op_min"])
                if ref and d != REFERENCE:
                    txt += f" ({s['cpu_op_min'] / ref['cpu_op_min']:.2f}x)"
                row.append(txt)
        if pgb:
            row.append(
                fmt_time(min(p["cpu"] / p["ops"] for p in ok_pgb))
                if wl == "tiny" and ok_pgb
                else ""
            )
        w("| " + " | ".join(row) + " |")
    # detail
    w("")
    w("### Detail")
    w("")
    w(
        "Medians over rounds, except *CPU/op min* (the best round). CPU/row = client CPU per "
        "op / rows per op. *spread* = (max - min) / median of client CPU per op. *other* = "
        "machine CPU used by neither the client nor its server backend during the cell "
        "(other sessions), in cores. *slowdown* = CPU time of a fixed pure-Python loop run "
        "around the cell, relative to the fastest such loop of the run (1.00 = the CPU was "
        "as fast as it ever was; on a shared VM a busy sibling thread makes it 1.3-1.7)."
    )
    w("")
    w(
        "| workload | loop | driver | ops/s | wall/op | CPU/op | CPU/op min | CPU/row "
        "| server CPU/op | spread | other | slowdown |"
    )
    w("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for wl in meta["workloads"]:
        for loop in loops:
            for d in drivers:
                s = summarize(results.get((wl, d, loop), []))
                if s is None:
                    continue
                rpo = s["rows_per_op"]
                per_row = f"{s['cpu_op'] / rpo * 1e9:.0f} ns" if rpo and rpo > 1 else ""
                srv = fmt_time(s["server_op"]) if "server_op" in s else "-"
                oth = f"{max(s['other_cores'], 0.0):.2f}" if "other_cores" in s else "-"
                slow = f"{s['slowdown']:.2f}" if "slowdown" in s else "-"
                w(
                    f"| {label(wl, meta)} | {loop} | {d} | {fmt_rate(s['ops_s'])} "
                    f"| {fmt_time(s['wall_op'])} "
                    f"| {fmt_time(s['cpu_op'])} | {fmt_time(s['cpu_op_min'])} | {per_row} | {srv} "
                    f"| {s['cpu_spread'] * 100:.0f} % | {oth} | {slow} |"
                )
    # types
    typed = [
        wl
        for wl in meta["workloads"]
        if wl not in ("tiny", "pool", "series_100k", "executemany_10k", "copy_1m", "pg_type")
    ]
    if typed:
        w("")
        w("### Python types returned (first row of each result)")
        w("")
        w("| workload | " + " | ".join(drivers) + " |")
        w("|---|" + "---|" * len(drivers))
    for wl in typed:
        row = [wl]
        for d in drivers:
            types = None
            for loop in loops:
                for c in results.get((wl, d, loop), []):
                    types = types or c.get("types")
            if types and wl.startswith("decode_"):
                row.append(", ".join(sorted(set(types))))
            else:
                row.append(", ".join(types) if types else "-")
        w("| " + " | ".join(row) + " |")
    if mem:
        w("")
        n = next((m.get("rows") for m in mem.values() if m.get("status") == "ok"), None)
        w(
            f"### Peak memory: fetch {n or '?'} rows (int4, text, float8) in one `fetch`, "
            "one subprocess per driver, default loop"
        )
        w("")
        w(
            "Peak RSS is the process's high-water mark (VmHWM; `ru_maxrss` where /proc is "
            "missing), growth = peak minus the RSS just before the fetch."
        )
        w("")
        w(
            "| driver | peak RSS | RSS before fetch | growth | growth per row | fetch wall | fetch CPU |"
        )
        w("|---|---:|---:|---:|---:|---:|---:|")
        for d in drivers:
            m = mem.get(d)
            if not m:
                continue
            if m.get("status") != "ok":
                w(f"| {d} | **FAIL**: {m.get('error')} | | | | | |")
                continue
            grow = (m["rss_peak_kb"] - (m["rss_before_kb"] or m["maxrss_before_kb"])) * 1024
            w(
                f"| {d} | {m['rss_peak_kb'] / 1024:.0f} MiB | {m['rss_before_kb'] / 1024:.0f} MiB "
                f"| {grow / 2**20:.0f} MiB | {grow / m['rows']:.0f} B | {m['wall']:.2f} s | {m['cpu']:.2f} s |"
            )
    return "\n".join(out)


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/meminfo") as f:
            mem = f", {int(f.readline().split()[1]) / 2**20:.0f} GiB"
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} CPU {model}{mem}, {platform.system()} {platform.release()}, "
        f"loadavg at start {load[0]:.2f}"
    )


# ---------------------------------------------------------------------------- main ----


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 1 round, small sizes")
    p.add_argument("--rounds", type=int, help="rounds (median reported); default 3, 1 with --quick")
    p.add_argument("--workload", action="append", choices=list(bc.WORKLOADS))
    p.add_argument("--driver", action="append", choices=ALL_DRIVERS)
    p.add_argument("--loop", action="append", choices=ALL_LOOPS)
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument(
        "--memory-rows", type=int, help="rows of the memory fetch (default 1M, 100k quick)"
    )
    p.add_argument(
        "--tcp",
        action="store_true",
        help="temporary cluster over TCP 127.0.0.1 instead of its Unix-domain socket",
    )
    p.add_argument(
        "--pool-reset",
        choices=("default", "rollback", "no-advisory-unlock"),
        default="default",
        help="ferropg's pool in the pool workload: its default reset on release, "
        "`rollback` (a no-op reset= callback: only an open transaction is rolled back and "
        "listeners dropped, as psycopg_pool does) or `no-advisory-unlock` "
        "(reset_advisory_locks=False)",
    )
    p.add_argument(
        "--pgbouncer",
        action="store_true",
        help="also run every driver through a transaction-mode pgbouncer in front of the "
        "temporary cluster (its Unix socket, a server pool of 10): ferropg with no setting, "
        "asyncpg with statement_cache_size=0 and psycopg with prepare_threshold=None, as "
        "their documentation says; default workloads tiny and pool",
    )
    p.add_argument("--no-pgbench", action="store_true")
    p.add_argument("--pgbench-seconds", type=int, help="default 5, 1 with --quick")
    p.add_argument(
        "--cell-timeout", type=float, help="seconds before a cell is killed (120; 30 with --quick)"
    )
    p.add_argument("--strict", action="store_true", help="exit 2 if any cell failed")
    p.add_argument("--json", help="write the raw results here")
    p.add_argument("--markdown", help="write the report here too")
    p.add_argument("--from-json", help="only render the report of a --json file of an earlier run")
    a = p.parse_args()

    if a.from_json:
        with open(a.from_json) as f:
            saved = json.load(f)
        results = {(c["workload"], c["driver"], c["loop"]): c["runs"] for c in saved["cells"]}
        drivers = [d for d in ALL_DRIVERS if any(k[1] == d for k in results)]
        loops = [lp for lp in ALL_LOOPS if any(k[2] == lp for k in results)]
        report = render(saved["meta"], results, saved["pgbench"], saved["memory"], drivers, loops)
        print(report)
        if a.markdown:
            with open(a.markdown, "w") as f:
                f.write(report + "\n")
        return 0

    rounds = a.rounds or (1 if a.quick else 3)
    workloads = a.workload or (["tiny", "pool"] if a.pgbouncer else list(bc.WORKLOADS))
    if a.pgbouncer and os.environ.get("PGDSN"):
        log("--pgbouncer needs the temporary cluster: unset PGDSN")
        return 1
    loops = a.loop or list(ALL_LOOPS)
    if "uvloop" in loops and importlib.util.find_spec("uvloop") is None:
        log("uvloop is not installed: default loop only")
        loops = [x for x in loops if x != "uvloop"]
    drivers = [d for d in (a.driver or ALL_DRIVERS) if importlib.util.find_spec(d) is not None]
    missing = [d for d in (a.driver or ALL_DRIVERS) if d not in drivers]
    if missing:
        log(f"not installed, skipped: {', '.join(missing)}")
    for need in ("ferropg", "asyncpg"):
        if importlib.util.find_spec(need) is None:
            log(f"{need} is not importable (ferropg: `make build-release`; asyncpg: pip install)")
            return 1
    if a.cell_timeout is None:
        a.cell_timeout = 30.0 if a.quick else 120.0
    mem_rows = a.memory_rows or (100_000 if a.quick else 1_000_000)
    pgb_seconds = a.pgbench_seconds or (1 if a.quick else 5)

    with contextlib.ExitStack() as stack:
        dsn = os.environ.get("PGDSN")
        local = dsn is None
        if dsn is None:
            from ferropg.cluster import TempCluster

            log("starting a temporary PostgreSQL cluster ...")
            cluster = stack.enter_context(TempCluster(server_settings=SERVER_SETTINGS))
            dsn = cluster.dsn()
            if not a.tcp:
                spec = cluster.get_connection_spec()
                dsn = f"postgresql://postgres@/postgres?host={spec['host']}&port={spec['port']}"
        bouncer_dsn = None
        if a.pgbouncer:
            sys.path.insert(0, os.path.join(HERE, "..", "tests"))
            from pgbouncer import PgBouncer

            log("starting pgbouncer (transaction mode) ...")
            bouncer = stack.enter_context(
                PgBouncer(cluster, default_pool_size=10, round_robin=False)
            )
            bouncer_dsn = (
                f"postgresql://postgres@/postgres?host={bouncer.socket_dir}&port={bouncer.port}"
            )
        log(f"server: {dsn}; loading fixtures ...")
        fx = asyncio.run(load_fixtures(dsn))
        pgbench = None if a.no_pgbench else find_pgbench()
        if not a.no_pgbench and pgbench is None:
            log("pgbench not found: no C reference")

        workers = {(d, lp): Worker(d, lp, dsn) for d in drivers for lp in loops}
        real_drivers = list(drivers)
        if bouncer_dsn is not None:
            for d in real_drivers:
                for lp in loops:
                    workers[(d + VIA_POOLER, lp)] = Worker(d, lp, bouncer_dsn, behind_pooler=True)
            drivers = [x for d in real_drivers for x in (d, d + VIA_POOLER)]
        stack.callback(lambda: [wk.close() for wk in workers.values()])
        versions: dict[str, str] = {}
        for d in real_drivers:
            hello = workers[(d, loops[0])]._spawn(60)
            versions[d] = hello.get("version", hello.get("error", "?"))
            nat = hello.get("native")
            if nat:
                versions[d] += (
                    f" ({nat['path']}, {nat['size'] / 2**20:.1f} MiB, built {nat['mtime']} UTC)"
                )
        if pgbench:
            with contextlib.suppress(Exception):
                versions["pgbench"] = subprocess.run(
                    [pgbench, "--version"], capture_output=True, text=True
                ).stdout.strip()

        results: dict[tuple, list] = {}
        skip: set[tuple] = set()
        pgb: list[dict] = []
        pairs = [(d, lp) for d in drivers for lp in loops]
        t_start = time.time()
        started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
        for r in range(rounds):
            for wi, wl in enumerate(workloads):
                spec = bc.WORKLOADS[wl]
                k = (r + wi) % len(pairs)
                order = pairs[k:] + pairs[:k]
                if wl == "tiny" and pgbench:
                    res = pgbench_cell(pgbench, dsn, pgb_seconds)
                    pgb.append(res)
                    if res["status"] == "ok":
                        log(
                            f"r{r + 1} tiny pgbench: {res['tps']:.0f} tps, {res['cpu'] / res['ops'] * 1e6:.1f} µs/op"
                        )
                for d, lp in order:
                    key = (wl, d, lp)
                    if key in skip:
                        continue
                    cmd = {
                        "workload": wl,
                        "ops": spec["quick"] if a.quick else spec["ops"],
                        "warm": spec["warm"],
                        "rows": spec.get("quick_rows" if a.quick else "rows"),
                        # Through pgbouncer, which backend serves a query is its choice.
                        "server_cpu": local and not d.endswith(VIA_POOLER),
                        "pg_type_expect": fx["pg_type_expect"],
                        "pg_type_ncols": fx["pg_type_ncols"],
                        "tasks": spec.get("tasks"),
                        "pool_size": spec.get("pool_size"),
                        # Only ferropg's pool is run with another reset than its default.
                        "pool_reset": a.pool_reset if d.startswith("ferropg") else "default",
                    }
                    res = workers[(d, lp)].run(cmd, a.cell_timeout)
                    results.setdefault(key, []).append(res)
                    if res.get("status") == "ok":
                        log(
                            f"r{r + 1} {wl} {d}/{lp}: {res['ops'] / res['wall']:.1f} ops/s, "
                            f"{res['cpu'] / res['ops'] * 1e6:.1f} µs CPU/op"
                        )
                    else:
                        log(f"r{r + 1} {wl} {d}/{lp}: {res.get('status')}: {res.get('error')}")
                        skip.add(key)  # do not retry a failed cell
        for wk in workers.values():
            wk.close()

        mem: dict[str, dict] = {}
        if not a.no_memory:
            for d in real_drivers:
                log(f"memory: {d} fetching {mem_rows} rows ...")
                try:
                    cp = subprocess.run(
                        [
                            sys.executable,
                            os.path.join(HERE, "bench_worker.py"),
                            "--driver",
                            d,
                            "--loop",
                            "asyncio",
                            "--dsn",
                            dsn,
                            "--memory",
                            str(mem_rows),
                        ],
                        capture_output=True,
                        text=True,
                        timeout=a.cell_timeout,
                        cwd=HERE,
                    )
                    lines = cp.stdout.strip().splitlines()
                    mem[d] = (
                        json.loads(lines[-1])
                        if lines
                        else {"status": "fail", "error": cp.stderr.strip()[-200:]}
                    )
                except subprocess.TimeoutExpired:
                    mem[d] = {"status": "fail", "error": "timeout"}

        meta = {
            "started": started,
            "elapsed": time.time() - t_start,
            "rounds": rounds,
            "quick": a.quick,
            "workloads": workloads,
            "machine": machine(),
            "server": (
                f"temporary cluster, {'TCP 127.0.0.1' if a.tcp else 'Unix-domain socket'}, "
                "unsafe benchmark settings"
            )
            if local
            else "PGDSN",
            "server_version": fx["server_version"],
            "python": platform.python_version(),
            "versions": versions,
            "pool_reset": a.pool_reset,
        }
        report = render(meta, results, pgb, mem, drivers, loops)
        print(report)
        if a.markdown:
            with open(a.markdown, "w") as f:
                f.write(report + "\n")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(
                    {
                        "meta": meta,
                        "cells": [
                            {"workload": k[0], "driver": k[1], "loop": k[2], "runs": v}
                            for k, v in results.items()
                        ],
                        "pgbench": pgb,
                        "memory": mem,
                    },
                    f,
                    indent=1,
                )
        bad = [k for k, v in results.items() if any(c.get("status") != "ok" for c in v)]
        return 2 if bad and a.strict else 0


if __name__ == "__main__":
    sys.exit(main())

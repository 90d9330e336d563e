"""One adapter per driver: the smallest idiomatic call for each operation.

The hot path (``fetcher``) returns a callable that the workload awaits once per op. For the
asyncpg API (ferropg, asyncpg) it is ``functools.partial(con.fetch, sql)``, so no extra Python
frame is added; psycopg and psqlpy need two calls per op (execute + fetchall,
fetch + result), which is their API.

- psycopg 3: ``AsyncConnection`` in autocommit, one binary cursor (``binary=True``) reused,
  ``%b`` (binary) parameters, tuple rows, ``prepare=True`` on every hot query.
- psqlpy: ``connect()``, ``fetch(..., prepared=True)`` (its default) and
  ``result(as_tuple=True)`` (tuples, cheaper than its dict rows); COPY through its
  ``copy_records_to_table`` in 10k-record chunks (larger batches blocked the event loop in
  0.13.1 according to the baseline run). On the default asyncio loop that COPY deadlocks
  even in 10k chunks (the main thread waits inside the call while a tokio thread waits in
  ``call_soon_threadsafe``); the cell times out and is reported as failed.

Pools (the ``pool`` workload: acquire, the tiny query, release, with
``async with <acquire>``, each driver's own idiom):

- ferropg, asyncpg: ``create_pool(dsn, min_size=N, max_size=N)``, ``pool.acquire()``; the
  pool resets the session on release (``Connection.reset()``: asyncpg's reset query).
  ferropg's ``rollback`` variant passes a no-op ``reset=`` callback, which leaves only the
  part a callback cannot skip (roll back an open transaction, drop listeners); its
  ``no-advisory-unlock`` variant passes ``reset_advisory_locks=False``.
- psycopg: ``psycopg_pool.AsyncConnectionPool(min_size=N, max_size=N)``, connections in
  autocommit with a reused binary cursor made by ``configure``, ``pool.connection()``; on
  return it only rolls back a transaction left open (no ``reset`` callback, no ``check``).
- psqlpy: ``ConnectionPool(max_db_pool_size=N)`` (no minimum: it opens connections on
  demand, and the warm-up fills it), ``pool.acquire()``; its default recycling (``Fast``)
  runs no query on release.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import os
import re
from collections.abc import Callable
from typing import Any

#: The DSN is a transaction-mode pgbouncer's (``run.py --pgbouncer``): asyncpg gets
#: ``statement_cache_size=0`` and psycopg no server-side prepared statements, as their
#: documentation says for that case; ferropg gets no setting.
BEHIND_POOLER = os.environ.get("FERROPG_BENCH_BEHIND_POOLER") == "1"

_PARAM = re.compile(r"\$\d+")


class Unsupported(Exception):
    """The driver has no API for this workload (reported as n/a)."""


class AsyncpgAPI:
    """ferropg and asyncpg: the asyncpg API."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.mod = importlib.import_module(name)
        # ferropg's __version__ is the asyncpg release it stands in for; VERSION is its own.
        self.version = getattr(self.mod, "VERSION", None) or getattr(self.mod, "__version__", "?")

    async def connect(self, dsn: str) -> Any:
        return await self.mod.connect(dsn, **self._pooler_kwargs())

    def _pooler_kwargs(self) -> dict[str, Any]:
        return {"statement_cache_size": 0} if BEHIND_POOLER and self.name == "asyncpg" else {}

    async def close(self, con: Any) -> None:
        await con.close()

    async def setup(self, con: Any, workload: str) -> None:
        pass

    def fetcher(self, con: Any, sql: str) -> Callable[..., Any]:
        return functools.partial(con.fetch, sql)

    async def fetchval(self, con: Any, sql: str, *args: Any) -> Any:
        return await con.fetchval(sql, *args)

    async def fetchrow(self, con: Any, sql: str, *args: Any) -> Any:
        return await con.fetchrow(sql, *args)

    async def execute(self, con: Any, sql: str) -> None:
        await con.execute(sql)

    def prep_many(self, rows: list[tuple]) -> Any:
        return rows

    async def executemany(self, con: Any, sql: str, rows: Any) -> None:
        await con.executemany(sql, rows)

    def prep_copy(self, records: list[tuple]) -> Any:
        return records

    async def copy(
        self, con: Any, schema: str, table: str, columns: list[str], types: list[str], records: Any
    ) -> None:
        await con.copy_records_to_table(table, records=records, columns=columns, schema_name=schema)

    # ------------------------------------------------------------------ pools ----

    async def create_pool(self, dsn: str, size: int, reset: str) -> Any:
        kwargs: dict[str, Any] = {}
        if reset == "rollback":
            if self.name != "ferropg":
                raise Unsupported("the rollback reset variant is for ferropg only")

            async def no_reset(con: Any) -> None:
                pass

            kwargs["reset"] = no_reset
        elif reset == "no-advisory-unlock":
            if self.name != "ferropg":
                raise Unsupported("the no-advisory-unlock reset variant is for ferropg only")
            kwargs["reset_advisory_locks"] = False
        elif reset != "default":
            raise ValueError(f"unknown pool reset {reset!r}")
        kwargs.update(self._pooler_kwargs())
        return await self.mod.create_pool(dsn, min_size=size, max_size=size, **kwargs)

    async def close_pool(self, pool: Any) -> None:
        await pool.close()

    def pool_fetcher(self, pool: Any, sql: str) -> Callable[..., Any]:
        acquire = pool.acquire

        async def fetch(*args: Any) -> Any:
            async with acquire() as con:
                return await con.fetch(sql, *args)

        return fetch

    async def pool_backend_pids(self, pool: Any, size: int) -> list[int]:
        """The backend of every connection in the pool: all *size* held at once."""
        cons = [await pool.acquire() for _ in range(size)]
        try:
            return [con.get_server_pid() for con in cons]
        finally:
            for con in cons:
                await pool.release(con)


class PsycopgAPI:
    name = "psycopg"

    def __init__(self) -> None:
        self.mod = importlib.import_module("psycopg")
        self.version = (
            f"{self.mod.__version__} ({self.mod.pq.__impl__}, libpq {self.mod.pq.version()})"
        )

    async def connect(self, dsn: str) -> Any:
        con = await self.mod.AsyncConnection.connect(dsn, autocommit=True)
        con._bench_cur = con.cursor(binary=True)
        return con

    async def close(self, con: Any) -> None:
        await con.close()

    async def setup(self, con: Any, workload: str) -> None:
        if workload == "decode_composite":
            from bench_common import SCHEMA
            from psycopg.types.composite import CompositeInfo, register_composite

            info = await CompositeInfo.fetch(con, f"{SCHEMA}.bench_comp")
            register_composite(info, con)
            con._bench_cur = con.cursor(binary=True)  # a cursor copies the adapters it starts with

    def fetcher(self, con: Any, sql: str) -> Callable[..., Any]:
        cur = con._bench_cur
        sql = _PARAM.sub("%b", sql)
        execute = cur.execute
        fetchall = cur.fetchall

        async def fetch(*args: Any) -> Any:
            await execute(sql, args, prepare=not BEHIND_POOLER)
            return await fetchall()

        return fetch

    async def fetchval(self, con: Any, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(con, sql, *args)
        return row[0]

    async def fetchrow(self, con: Any, sql: str, *args: Any) -> Any:
        cur = con._bench_cur
        await cur.execute(_PARAM.sub("%b", sql), args)
        return await cur.fetchone()

    async def execute(self, con: Any, sql: str) -> None:
        await con.execute(sql)

    def prep_many(self, rows: list[tuple]) -> Any:
        return rows

    async def executemany(self, con: Any, sql: str, rows: Any) -> None:
        await con._bench_cur.executemany(_PARAM.sub("%b", sql), rows)

    def prep_copy(self, records: list[tuple]) -> Any:
        return records

    async def copy(
        self, con: Any, schema: str, table: str, columns: list[str], types: list[str], records: Any
    ) -> None:
        sql = f"COPY {schema}.{table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        async with con._bench_cur.copy(sql) as cp:
            cp.set_types(types)
            write_row = cp.write_row
            for r in records:
                await write_row(r)

    # ------------------------------------------------------------------ pools ----

    async def create_pool(self, dsn: str, size: int, reset: str) -> Any:
        if reset != "default":
            raise Unsupported(f"no {reset!r} reset variant for psycopg_pool")
        try:
            from psycopg_pool import AsyncConnectionPool
        except ImportError:
            raise Unsupported("psycopg_pool is not installed (pip install psycopg_pool)") from None

        async def configure(con: Any) -> None:
            con._bench_cur = con.cursor(binary=True)

        pool = AsyncConnectionPool(
            dsn,
            min_size=size,
            max_size=size,
            kwargs={"autocommit": True},
            configure=configure,
            open=False,
        )
        await pool.open(wait=True)
        return pool

    async def close_pool(self, pool: Any) -> None:
        await pool.close()

    def pool_fetcher(self, pool: Any, sql: str) -> Callable[..., Any]:
        sql = _PARAM.sub("%b", sql)
        connection = pool.connection

        async def fetch(*args: Any) -> Any:
            async with connection() as con:
                cur = con._bench_cur
                await cur.execute(sql, args, prepare=not BEHIND_POOLER)
                return await cur.fetchall()

        return fetch

    async def pool_backend_pids(self, pool: Any, size: int) -> list[int]:
        cons = [await pool.getconn() for _ in range(size)]
        try:
            return [con.info.backend_pid for con in cons]
        finally:
            for con in cons:
                await pool.putconn(con)


class PsqlpyAPI:
    name = "psqlpy"
    COPY_CHUNK = 10_000

    def __init__(self) -> None:
        self.mod = importlib.import_module("psqlpy")
        try:
            from importlib.metadata import version

            self.version = version("psqlpy")
        except Exception:
            self.version = "?"

    async def connect(self, dsn: str) -> Any:
        return await self.mod.connect(dsn=dsn)

    async def close(self, con: Any) -> None:
        con.close()

    async def setup(self, con: Any, workload: str) -> None:
        pass

    def fetcher(self, con: Any, sql: str) -> Callable[..., Any]:
        fetch_ = con.fetch

        async def fetch(*args: Any) -> Any:
            return (await fetch_(sql, args)).result(as_tuple=True)

        return fetch

    async def fetchval(self, con: Any, sql: str, *args: Any) -> Any:
        return await con.fetch_val(sql, list(args))

    async def fetchrow(self, con: Any, sql: str, *args: Any) -> Any:
        return (await con.fetch(sql, list(args))).result(as_tuple=True)[0]

    async def execute(self, con: Any, sql: str) -> None:
        await con.execute_batch(sql)

    def prep_many(self, rows: list[tuple]) -> Any:
        return [list(r) for r in rows]

    async def executemany(self, con: Any, sql: str, rows: Any) -> None:
        await con.execute_many(sql, rows)

    def prep_copy(self, records: list[tuple]) -> Any:
        n = self.COPY_CHUNK
        return [records[k : k + n] for k in range(0, len(records), n)]

    async def copy(
        self, con: Any, schema: str, table: str, columns: list[str], types: list[str], records: Any
    ) -> None:
        copy_ = con.copy_records_to_table
        for chunk in records:
            await copy_(table, chunk, columns=columns, schema_name=schema)

    # ------------------------------------------------------------------ pools ----

    async def create_pool(self, dsn: str, size: int, reset: str) -> Any:
        if reset != "default":
            raise Unsupported(f"no {reset!r} reset variant for psqlpy")
        return self.mod.ConnectionPool(dsn=dsn, max_db_pool_size=size)

    async def close_pool(self, pool: Any) -> None:
        pool.close()

    def pool_fetcher(self, pool: Any, sql: str) -> Callable[..., Any]:
        acquire = pool.acquire

        async def fetch(*args: Any) -> Any:
            async with acquire() as con:
                return (await con.fetch(sql, args)).result(as_tuple=True)

        return fetch

    async def pool_backend_pids(self, pool: Any, size: int) -> list[int]:
        # Held at once, so the pool (no minimum size) opens all of them.
        async with contextlib.AsyncExitStack() as stack:
            cons = [await stack.enter_async_context(pool.acquire()) for _ in range(size)]
            return list(
                await asyncio.gather(
                    *(con.fetch_val("SELECT pg_backend_pid()", []) for con in cons)
                )
            )


def load(name: str) -> Any:
    if name in ("ferropg", "asyncpg"):
        return AsyncpgAPI(name)
    if name == "psycopg":
        return PsycopgAPI()
    if name == "psqlpy":
        return PsqlpyAPI()
    raise ValueError(f"unknown driver {name!r}")

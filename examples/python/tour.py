"""A short tour of ferropg's asyncio API.

Uses the server named by ``PGDSN`` (or ``PGHOST`` and friends); otherwise starts a
temporary PostgreSQL cluster for the duration of the tour.
"""

import asyncio
import contextlib
import datetime
import decimal
import os
import sys
import uuid

import ferropg
from ferropg import cluster as pg_cluster


async def tour(dsn: str | None) -> None:
    con = await ferropg.connect(dsn)
    version = con.get_server_version()
    print(
        f"connected to PostgreSQL {version.major}.{version.micro} (backend pid {con.get_server_pid()})"
    )

    status = await con.execute(
        """
        CREATE TEMP TABLE fruit (id serial PRIMARY KEY, name text UNIQUE, price numeric,
                                 added timestamptz DEFAULT now(), tag uuid);
        INSERT INTO fruit (name, price) VALUES ('apple', 1.20), ('pear', 0.95);
        """
    )
    print(f"script ran; last status: {status!r}")

    await con.execute(
        "INSERT INTO fruit (name, price, tag) VALUES ($1, $2, $3)",
        "plum",
        decimal.Decimal("2.50"),
        uuid.uuid4(),
    )
    rows = await con.fetch("SELECT id, name, price FROM fruit WHERE price > $1 ORDER BY id", 1)
    for row in rows:
        print(f"  row {row['id']}: {row['name']} costs {row['price']}  ({row!r})")

    stmt = await con.prepare("SELECT name FROM fruit WHERE price < $1 ORDER BY name")
    cheap = [r["name"] for r in await stmt.fetch(decimal.Decimal("2"))]
    print(f"prepared statement {stmt.get_name()!r} found {cheap}")

    await con.executemany(
        "INSERT INTO fruit (name, price) VALUES ($1, $2)",
        [(f"berry-{i}", decimal.Decimal(i) / 10) for i in range(1, 6)],
    )
    async with con.transaction():
        seen = [
            r["name"] async for r in con.cursor("SELECT name FROM fruit ORDER BY id", prefetch=2)
        ]
        print(f"a cursor in a transaction read {len(seen)} rows, 2 at a time")
        try:
            async with con.transaction():  # a savepoint
                await con.execute("DELETE FROM fruit")
                raise RuntimeError("changed my mind")
        except RuntimeError:
            pass
    print(
        f"the savepoint rolled back: {await con.fetchval('SELECT count(*) FROM fruit')} rows remain"
    )

    copied = await con.copy_records_to_table(
        "fruit", records=[("kiwi", decimal.Decimal("0.5"))], columns=["name", "price"]
    )
    print(f"binary COPY: {copied}")

    newest = await con.fetchval("SELECT max(added) FROM fruit")
    print(f"newest row added at {newest.isoformat()} (aware: {newest.tzinfo is not None})")
    print(f"date infinity maps to {await con.fetchval('SELECT $1::date', datetime.date.max)!r}")

    try:
        await con.execute("INSERT INTO fruit (name) VALUES ('apple')")
    except ferropg.UniqueViolationError as e:
        print(f"duplicate refused: {type(e).__name__} sqlstate={e.sqlstate} detail={e.detail!r}")
    print(
        f"the connection is still usable: {await con.fetchval('SELECT count(*) FROM fruit')} rows"
    )

    await con.close()
    print("closed:", con.is_closed())


def main() -> int:
    dsn = os.environ.get("PGDSN")
    with contextlib.ExitStack() as stack:
        if dsn is None and not os.environ.get("PGHOST"):
            cluster = stack.enter_context(pg_cluster.TempCluster())
            dsn = cluster.dsn()
            print(f"started a temporary PostgreSQL at {dsn}")
        asyncio.run(tour(dsn))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""SQLAlchemy dialects: ``postgresql+ferropg://`` (synchronous, on :mod:`ferropg.dbapi`)
and ``postgresql+ferropg_async://`` (asyncio, on the async face).

Both are registered through the ``sqlalchemy.dialects`` entry points, named as psycopg's
are; ``create_async_engine("postgresql+ferropg://...")`` finds the async one too
(:meth:`FerropgDialect.get_async_dialect_cls`).

They build on SQLAlchemy's asyncpg dialect, whose choices fit ferropg's codecs (the
same Python types as asyncpg): parameters as ``$n`` with a cast rendered on each
(``render_bind_cast``), since values are encoded strictly for the type the server
infers; JSON and JSONB decoded by SQLAlchemy's deserializer; ranges, enums, intervals and
arrays as asyncpg returns them. The statement cache is the connection's own (prepared
once per connection, as asyncpg's dialect does).
"""

from __future__ import annotations

import json as _json
from typing import Any

from sqlalchemy import pool
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.dialects.postgresql.base import PGExecutionContext

__all__ = ("FerropgAsyncDialect", "FerropgDialect")


class _ExecutionContext(PGExecutionContext):
    def create_server_side_cursor(self) -> Any:
        # A named cursor of ferropg.dbapi reads a portal in pieces (stream_results).
        return self._dbapi_connection.cursor(f"sa_{id(self):x}")


class _Dbapi:
    """:mod:`ferropg.dbapi` as the dialect sees it, plus the ``asyncpg`` attribute that
    the asyncpg dialect's range types reach for (ferropg, asyncpg's drop-in)."""

    def __init__(self) -> None:
        import ferropg
        import ferropg.dbapi

        self._module = ferropg.dbapi
        self.asyncpg = ferropg

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


class FerropgDialect(PGDialect_asyncpg):
    """``postgresql+ferropg://``: SQLAlchemy's synchronous engines on
    :mod:`ferropg.dbapi`."""

    driver = "ferropg"
    is_async = False
    supports_statement_cache = True
    supports_server_side_cursors = True
    execution_ctx_cls = _ExecutionContext

    @classmethod
    def import_dbapi(cls) -> Any:
        return _Dbapi()

    @classmethod
    def get_pool_class(cls, url: Any) -> Any:
        return pool.QueuePool

    @classmethod
    def get_async_dialect_cls(cls, url: Any) -> type:
        return FerropgAsyncDialect

    def create_connect_args(self, url: Any) -> tuple[list, dict]:
        args, opts = super().create_connect_args(url)
        # asyncpg's dialect names the cache size after its own argument.
        size = opts.pop("prepared_statement_cache_size", None)
        if size is not None:
            opts["statement_cache_size"] = size
        return args, opts

    def on_connect(self) -> Any:
        deserializer = self._json_deserializer or _json.loads

        def connect(dbapi_connection: Any) -> None:
            con = dbapi_connection.connection
            con.set_type_codec(
                "json",
                encoder=str.encode,
                decoder=lambda data: deserializer(data.decode()),
                schema="pg_catalog",
                format="binary",
            )
            con.set_type_codec(
                "jsonb",
                encoder=lambda text: b"\x01" + text.encode(),
                decoder=lambda data: deserializer(data[1:].decode()),
                schema="pg_catalog",
                format="binary",
            )
            if self._native_inet_types is False:
                for name in ("inet", "cidr"):
                    con.set_type_codec(
                        name,
                        encoder=lambda s: s,
                        decoder=lambda s: s,
                        schema="pg_catalog",
                        format="text",
                    )

        return connect

    # Transactions and session characteristics, on ferropg.dbapi's connection.

    def get_isolation_level_values(self, dbapi_connection: Any) -> list[str]:
        return ["AUTOCOMMIT", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"]

    def set_isolation_level(self, dbapi_connection: Any, level: str) -> None:
        if level == "AUTOCOMMIT":
            dbapi_connection.autocommit = True
            return
        dbapi_connection.autocommit = False
        cur = dbapi_connection.cursor()
        cur.execute(f"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL {level}")
        cur.close()
        dbapi_connection.commit()

    def get_isolation_level(self, dbapi_connection: Any) -> str:
        if dbapi_connection.autocommit:
            return "AUTOCOMMIT"
        cur = dbapi_connection.cursor()
        cur.execute("SHOW TRANSACTION ISOLATION LEVEL")
        level = cur.fetchone()[0]
        cur.close()
        return level.upper()

    def detect_autocommit_setting(self, dbapi_conn: Any) -> bool:
        return bool(dbapi_conn.autocommit)

    def set_readonly(self, connection: Any, value: bool) -> None:
        self._session_characteristic(connection, "READ ONLY" if value else "READ WRITE")

    def get_readonly(self, connection: Any) -> bool:
        return self._show(connection, "default_transaction_read_only") == "on"

    def set_deferrable(self, connection: Any, value: bool) -> None:
        self._session_characteristic(connection, "DEFERRABLE" if value else "NOT DEFERRABLE")

    def get_deferrable(self, connection: Any) -> bool:
        return self._show(connection, "default_transaction_deferrable") == "on"

    def _session_characteristic(self, connection: Any, words: str) -> None:
        cur = connection.cursor()
        cur.execute(f"SET SESSION CHARACTERISTICS AS TRANSACTION {words}")
        cur.close()

    def _show(self, connection: Any, name: str) -> str:
        cur = connection.cursor()
        cur.execute(f"SHOW {name}")
        value = cur.fetchone()[0]
        cur.close()
        return value

    def do_ping(self, dbapi_connection: Any) -> bool:
        cur = dbapi_connection.cursor()
        try:
            cur.execute("SELECT 1")
        finally:
            cur.close()
        return True

    def do_terminate(self, dbapi_connection: Any) -> None:
        dbapi_connection.connection.terminate()

    def is_disconnect(self, e: Any, connection: Any, cursor: Any) -> bool:
        if connection is not None:
            return connection.closed
        return isinstance(e, self.dbapi.OperationalError)

    def get_driver_connection(self, connection: Any) -> Any:
        return connection


class FerropgAsyncDialect(PGDialect_asyncpg):
    """``postgresql+ferropg_async://``: SQLAlchemy's asyncio engines on ferropg's async
    face, through SQLAlchemy's asyncpg adapter (ferropg is asyncpg's drop-in)."""

    driver = "ferropg_async"
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> Any:
        from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

        import ferropg

        return AsyncAdapt_asyncpg_dbapi(ferropg)


dialect = FerropgDialect

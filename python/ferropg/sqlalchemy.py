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
once per connection, as asyncpg's dialect does); DDL run through SQLAlchemy makes every
connection of the engine forget its cached statements and types, as asyncpg's dialect does.
"""

from __future__ import annotations

import builtins
import json as _json
import types
import weakref
from typing import Any

from sqlalchemy import pool, util
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi, PGDialect_asyncpg
from sqlalchemy.dialects.postgresql.base import PGExecutionContext

__all__ = ("FerropgAsyncDialect", "FerropgDialect")


def _load_postgresql_provisioning() -> None:
    # SQLAlchemy's test plugin imports "<dialect's package>.provision" for the backend's
    # test hooks (temporary tables, prepared transactions, extensions, follower databases);
    # ours is ferropg.provision, which does not exist: PostgreSQL's are the ones that apply.
    import sqlalchemy.dialects.postgresql.provision  # noqa: F401


class _ExecutionContext(PGExecutionContext):
    def create_server_side_cursor(self) -> Any:
        # A named cursor of ferropg.dbapi reads a portal in pieces (stream_results).
        return self._dbapi_connection.cursor(f"sa_{id(self):x}")

    def pre_exec(self) -> None:
        # As SQLAlchemy's asyncpg dialect does: DDL marks every connection's cached
        # statements and types stale (a table or type made anew under a name a cached
        # statement knows gives "cached plan must not change result type" or "cache
        # lookup failed for type"), and each connection forgets them before its next
        # statement.
        if self.isddl:
            self.dialect._invalidate_schema_cache()
        self.dialect._catch_up_with_schema(self._dbapi_connection.dbapi_connection)

    def handle_dbapi_exception(self, e: BaseException) -> None:
        # A schema change made without DDL through SQLAlchemy (another client, a text
        # statement) shows as one of these: the next statements start afresh.
        from ferropg import exceptions

        if isinstance(e, (exceptions.InvalidCachedStatementError, exceptions.InternalServerError)):
            self.dialect._invalidate_schema_cache()


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

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Per DB-API connection: the _invalidate_schema_cache_asof it has caught up with.
        self._schema_seen: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    @classmethod
    def import_dbapi(cls) -> Any:
        return _Dbapi()

    def _catch_up_with_schema(self, dbapi_connection: Any) -> None:
        """Forgets the connection's statements and types if the schema changed since it
        last looked (a connection new to the dialect does so once: it may have cached a
        statement before its first execution here)."""
        asof = self._invalidate_schema_cache_asof
        if self._schema_seen.get(dbapi_connection, 0) < asof:
            dbapi_connection.connection.reload_schema_state()
            self._schema_seen[dbapi_connection] = asof

    @classmethod
    def get_pool_class(cls, url: Any) -> Any:
        return pool.QueuePool

    @classmethod
    def load_provisioning(cls) -> None:
        _load_postgresql_provisioning()

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
        # The SET ran in the implicit transaction it opened: it holds for the next one,
        # and only once that one is committed (SQLAlchemy has no transaction open here).
        connection.commit()

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


def _importing_ferropg_as_asyncpg(function: Any) -> Any:
    """``function`` run with ``import asyncpg`` inside it giving ferropg (ferropg's
    exception classes have asyncpg's names), and nothing changed for anyone else."""
    import ferropg

    def import_(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "asyncpg":
            return ferropg
        return builtins.__import__(name, *args, **kwargs)

    scope = {**function.__globals__, "__builtins__": {**vars(builtins), "__import__": import_}}
    return types.FunctionType(
        function.__code__, scope, function.__name__, function.__defaults__, function.__closure__
    )


class _AsyncDbapi(AsyncAdapt_asyncpg_dbapi):
    """SQLAlchemy's asyncpg adapter on ferropg's async face."""

    @util.memoized_property
    def _asyncpg_error_translate(self) -> dict:
        # Which driver exception becomes which PEP 249 class: SQLAlchemy's table, whose
        # code imports asyncpg itself (asyncpg's classes, which ferropg never raises, or
        # an ImportError where asyncpg is not installed).
        table = AsyncAdapt_asyncpg_dbapi._asyncpg_error_translate.fget
        return _importing_ferropg_as_asyncpg(table)(self)


class FerropgAsyncDialect(PGDialect_asyncpg):
    """``postgresql+ferropg_async://``: SQLAlchemy's asyncio engines on ferropg's async
    face, through SQLAlchemy's asyncpg adapter (ferropg is asyncpg's drop-in)."""

    driver = "ferropg_async"
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> Any:
        import ferropg

        return _AsyncDbapi(ferropg)

    @classmethod
    def load_provisioning(cls) -> None:
        _load_postgresql_provisioning()


dialect = FerropgDialect

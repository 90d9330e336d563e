"""asyncpg's import paths that other libraries use exist in ferropg, with the right objects.

Each path below was found in a library that depends on asyncpg (docs/import-paths.md
lists who imports what); ``asyncpg.x.Y`` is looked up as ``ferropg.x.Y``.
:func:`ferropg.install_as_asyncpg` is tested in a child interpreter, since it changes
``sys.modules`` and ``sys.meta_path`` for good.
"""

from __future__ import annotations

import datetime
import importlib
import inspect
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from typing import Any

import pytest

import ferropg
from ferropg import connect_utils, cursor, exceptions
from ferropg.pgproto import pgproto as pgproto_mod
from ferropg.pgproto import types as pgproto_types


def resolve(path: str) -> Any:
    """The object at ``asyncpg.<path>``, looked up in ferropg: the longest importable
    module prefix, then attributes."""
    assert path == "asyncpg" or path.startswith("asyncpg.")
    parts = ["ferropg", *path.split(".")[1:]]
    for n in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:n]))
        except ModuleNotFoundError:
            continue
        for attr in parts[n:]:
            obj = getattr(obj, attr)
        return obj
    raise AssertionError(f"nothing of {path} can be imported")


def is_module(obj: Any) -> bool:
    return inspect.ismodule(obj)


def subclass_of(base: type) -> Callable[[Any], bool]:
    return lambda obj: isinstance(obj, type) and issubclass(obj, base)


def is_async_function(obj: Any) -> bool:
    return inspect.iscoroutinefunction(obj)


def is_function(obj: Any) -> bool:
    return callable(obj) and not isinstance(obj, type)


def is_class(obj: Any) -> bool:
    return isinstance(obj, type)


def same_as(expected: Callable[[], Any]) -> Callable[[Any], bool]:
    return lambda obj: obj is expected()


EXCEPTIONS = [
    # SQLAlchemy's asyncpg dialect (lib/sqlalchemy/dialects/postgresql/asyncpg.py)
    "IntegrityConstraintViolationError",
    "PostgresError",
    "SyntaxOrAccessError",
    "InterfaceError",
    "InvalidCachedStatementError",
    "InternalServerError",
    "RestrictViolationError",
    "NotNullViolationError",
    "ForeignKeyViolationError",
    "UniqueViolationError",
    "CheckViolationError",
    "ExclusionViolationError",
    "InternalClientError",
    # Prefect (server/api/server.py, server/utilities/postgres_listener.py)
    "QueryCanceledError",
    "ConnectionDoesNotExistError",
    "CannotConnectNowError",
    "PostgresConnectionError",
    # piccolo (engine/postgres.py)
    "InsufficientPrivilegeError",
    # tortoise-orm (backends/asyncpg/client.py)
    "DataError",
    "InvalidCatalogNameError",
    "InvalidTransactionStateError",
]

#: (path, check): every path a dependent of asyncpg was seen to use.
PATHS: list[tuple[str, Callable[[Any], bool]]] = [
    # modules imported by name
    ("asyncpg.connection", is_module),
    ("asyncpg.cursor", is_module),
    ("asyncpg.pool", is_module),
    ("asyncpg.transaction", is_module),
    ("asyncpg.prepared_stmt", is_module),
    ("asyncpg.connect_utils", is_module),
    ("asyncpg.exceptions", is_module),
    ("asyncpg.protocol", is_module),
    ("asyncpg.protocol.protocol", is_module),
    ("asyncpg.pgproto", is_module),
    ("asyncpg.pgproto.pgproto", is_module),
    ("asyncpg.pgproto.types", is_module),
    ("asyncpg.types", is_module),
    ("asyncpg.utils", is_module),
    ("asyncpg.serverversion", is_module),
    ("asyncpg.cluster", is_module),
    # the top level
    ("asyncpg.connect", is_async_function),
    ("asyncpg.create_pool", is_function),
    ("asyncpg.Connection", same_as(lambda: ferropg.connection.Connection)),
    ("asyncpg.Pool", same_as(lambda: ferropg.pool.Pool)),
    ("asyncpg.Record", same_as(lambda: ferropg.protocol.Record)),
    ("asyncpg.BitString", same_as(lambda: ferropg.types.BitString)),
    ("asyncpg.Range", same_as(lambda: ferropg.types.Range)),
    ("asyncpg.BitString.from_int", callable),
    ("asyncpg.__version__", lambda v: isinstance(v, str)),
    *((f"asyncpg.{name}", subclass_of(Exception)) for name in EXCEPTIONS),
    *((f"asyncpg.exceptions.{name}", subclass_of(Exception)) for name in EXCEPTIONS),
    ("asyncpg.exceptions.PostgresError", subclass_of(exceptions._base.PostgresMessage)),
    # submodules' classes
    ("asyncpg.connection.Connection", same_as(lambda: ferropg.Connection)),
    ("asyncpg.connection.Connection.execute", is_async_function),
    ("asyncpg.connection.Connection.executemany", is_async_function),
    ("asyncpg.connection.Connection.fetch", is_async_function),
    ("asyncpg.connection.Connection.fetchval", is_async_function),
    ("asyncpg.connection.Connection.fetchrow", is_async_function),
    ("asyncpg.connection.Connection.transaction", is_function),
    ("asyncpg.Connection._execute", is_async_function),
    ("asyncpg.Connection._executemany", is_async_function),
    ("asyncpg.Connection.cursor", is_function),
    ("asyncpg.Connection.prepare", is_async_function),
    ("asyncpg.cursor.Cursor", is_class),
    ("asyncpg.cursor.CursorIterator", is_class),
    ("asyncpg.cursor.BaseCursor", same_as(lambda: cursor._BaseCursor)),
    ("asyncpg.cursor.BaseCursor._bind_exec", is_async_function),
    ("asyncpg.cursor.BaseCursor._exec", is_async_function),
    ("asyncpg.cursor.Cursor.fetch", callable),
    ("asyncpg.cursor.Cursor.forward", callable),
    ("asyncpg.cursor.Cursor.fetchrow", callable),
    ("asyncpg.cursor.CursorIterator.__anext__", is_async_function),
    ("asyncpg.pool.Pool", same_as(lambda: ferropg.Pool)),
    ("asyncpg.pool.PoolConnectionProxy", is_class),
    ("asyncpg.transaction.Transaction", is_class),
    ("asyncpg.prepared_stmt.PreparedStatement", is_class),
    *(
        (f"asyncpg.prepared_stmt.PreparedStatement.{m}", callable)
        for m in ("fetch", "fetchval", "fetchrow", "executemany", "fetchmany")
    ),
    ("asyncpg.connect_utils._connect_addr", is_async_function),
    ("asyncpg.connect_utils._parse_connect_dsn_and_args", is_function),
    ("asyncpg.connect_utils._ConnectionParameters", is_class),
    ("asyncpg.connect_utils.SessionAttribute", is_class),
    ("asyncpg.protocol.Protocol", is_class),
    ("asyncpg.protocol.Record", same_as(lambda: ferropg.Record)),
    ("asyncpg.protocol.protocol.Protocol", same_as(lambda: ferropg.protocol.Protocol)),
    ("asyncpg.protocol.protocol.Record", same_as(lambda: ferropg.Record)),
    ("asyncpg.protocol.protocol._create_record", callable),
    ("asyncpg.protocol.BUILTIN_TYPE_NAME_MAP", lambda m: m["int4"] == 23),
    ("asyncpg.protocol.protocol.BUILTIN_TYPE_NAME_MAP", lambda m: m["text"] == 25),
    ("asyncpg.pgproto.pgproto.UUID", subclass_of(uuid.UUID)),
    ("asyncpg.pgproto.pgproto.timedelta", same_as(lambda: datetime.timedelta)),
    *(
        (f"asyncpg.pgproto.types.{name}", same_as(lambda name=name: getattr(ferropg, name)))
        for name in (
            "BitString",
            "Point",
            "Box",
            "Path",
            "Polygon",
            "Line",
            "LineSegment",
            "Circle",
        )
    ),
    ("asyncpg.utils._quote_ident", is_function),
    ("asyncpg.utils._quote_literal", is_function),
]


@pytest.mark.parametrize("path,check", PATHS, ids=[p for p, _ in PATHS])
def test_path_exists(path: str, check: Callable[[Any], bool]) -> None:
    obj = resolve(path)
    assert check(obj), f"{path} -> {obj!r}"


def test_pgproto_reachable_after_import_ferropg_alone() -> None:
    # ``asyncpg.pgproto.pgproto.UUID`` is used as an attribute chain after a plain
    # ``import asyncpg``.
    code = "import ferropg; print(ferropg.pgproto.pgproto.UUID.__name__)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "UUID"


def test_pgproto_uuid_is_the_codecs_class() -> None:
    assert pgproto_mod.UUID is ferropg.types.UUID
    assert ferropg.pgproto.UUID is pgproto_mod.UUID
    assert sys.modules["ferropg.pgproto"] is ferropg.pgproto
    assert hasattr(ferropg.pgproto, "__path__")
    # The extension's own little module (where it defines the class) left no trace.
    assert ferropg.pgproto.__file__.endswith("__init__.py")
    assert not hasattr(ferropg.pgproto, "uuid")
    # The class pickles by reference: its __module__ imports and holds it.
    import pickle

    cls = pgproto_mod.UUID
    assert pickle.loads(pickle.dumps(cls)) is cls
    # Its values (made here as the codec makes them: the ``int`` slot filled) pickle as
    # plain uuid.UUIDs, which unpickle without ferropg.
    u = cls.__new__(cls)
    object.__setattr__(u, "int", 1234)
    back = pickle.loads(pickle.dumps(u))
    assert back == u and type(back) is uuid.UUID


def test_pgproto_uuid_constructor() -> None:
    text = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    made = pgproto_mod.UUID(text)
    assert made == uuid.UUID(text) and type(made) is pgproto_mod.UUID
    assert pgproto_mod.UUID(int=7).int == 7
    with pytest.raises(ValueError):
        pgproto_mod.UUID("not a uuid")


def test_pgproto_types_all() -> None:
    assert set(pgproto_types.__all__) == {
        "BitString",
        "Box",
        "Circle",
        "Line",
        "LineSegment",
        "Path",
        "Point",
        "Polygon",
    }


async def test_uuid_values_are_pgproto_uuid(dsn: str) -> None:
    con = await ferropg.connect(dsn)
    try:
        value = await con.fetchval("SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid")
        array = await con.fetchval("SELECT ARRAY[gen_random_uuid(), NULL]::uuid[]")
    finally:
        await con.close()
    assert isinstance(value, pgproto_mod.UUID)
    assert isinstance(value, uuid.UUID)
    assert value == uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    assert isinstance(array[0], pgproto_mod.UUID) and array[1] is None


async def test_geometry_and_bits_are_pgproto_types(dsn: str) -> None:
    con = await ferropg.connect(dsn)
    try:
        row = await con.fetchrow(
            "SELECT point(1, 2) AS p, box(point(0, 0), point(1, 1)) AS b,"
            " circle(point(0, 0), 2) AS c, lseg(point(0, 0), point(1, 1)) AS s,"
            " line(point(0, 0), point(1, 1)) AS l, path '((0,0),(1,1),(2,0))' AS pa,"
            " polygon '((0,0),(1,1),(2,0))' AS po, B'1011' AS bits"
        )
    finally:
        await con.close()
    assert isinstance(row["p"], pgproto_types.Point)
    assert isinstance(row["b"], pgproto_types.Box)
    assert isinstance(row["c"], pgproto_types.Circle)
    assert isinstance(row["s"], pgproto_types.LineSegment)
    assert isinstance(row["l"], pgproto_types.Line)
    assert isinstance(row["pa"], pgproto_types.Path)
    assert isinstance(row["po"], pgproto_types.Polygon)
    assert isinstance(row["bits"], pgproto_types.BitString)


def _parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3])


def test_version_is_the_asyncpg_api_level() -> None:
    # Sentry's integration disables itself for asyncpg.__version__ < 0.23.
    assert _parse_version(ferropg.__version__) >= (0, 23, 0)
    assert ferropg.__version__ == "0.32.0"
    # ferropg's own release stays available.
    assert isinstance(ferropg.VERSION, str) and ferropg.VERSION != ferropg.__version__
    try:
        from importlib.metadata import PackageNotFoundError, version

        installed = version("ferropg")
    except PackageNotFoundError:
        pytest.skip("ferropg is not installed: no metadata to compare VERSION with")
    assert ferropg.VERSION == installed


# --------------------------------------------------------------------- instrumentation


async def test_wrapped_execute_sees_cached_queries(dsn: str, monkeypatch) -> None:
    """A tracer that wraps Connection._execute on the class (as Sentry's integration
    does) sees every query, the ones the statement cache would answer fast too."""
    seen: list[str] = []
    original = ferropg.Connection._execute

    async def traced(self, query, *args, **kwargs):
        seen.append(query)
        return await original(self, query, *args, **kwargs)

    con = await ferropg.connect(dsn)
    try:
        await con.fetchval("SELECT $1::int", 1)  # prepares and caches
        monkeypatch.setattr(ferropg.Connection, "_execute", traced)
        assert await con.fetchval("SELECT $1::int", 2) == 2
        assert (await con.fetchrow("SELECT $1::int AS x", 3))["x"] == 3
        assert await con.fetch("SELECT $1::int", 4) == [(4,)]
        assert await con.execute("SELECT $1::int", 5) == "SELECT 1"
        # A script does not pass through _execute, as in asyncpg (a tracer that also
        # wraps Connection.execute would report it twice).
        assert await con.execute("SELECT 1; SELECT 2") == "SELECT 1"
        monkeypatch.undo()
        await con.fetchval("SELECT $1::int", 6)
    finally:
        await con.close()
    assert seen == ["SELECT $1::int", "SELECT $1::int AS x", "SELECT $1::int", "SELECT $1::int"]


async def test_wrapped_cursor_methods_see_each_round_trip(dsn: str, monkeypatch) -> None:
    """Sentry's integration wraps BaseCursor._bind_exec and BaseCursor._exec."""
    calls: list[tuple[str, str, int]] = []

    def wrap(name: str) -> None:
        original = getattr(cursor.BaseCursor, name)

        async def traced(self, n, timeout):
            calls.append((name, type(self).__name__, n))
            return await original(self, n, timeout)

        monkeypatch.setattr(cursor.BaseCursor, name, traced)

    wrap("_bind_exec")
    wrap("_exec")
    con = await ferropg.connect(dsn)
    try:
        async with con.transaction():
            query = "SELECT generate_series(1, 5)"
            rows = [r[0] async for r in con.cursor(query, prefetch=2)]
            assert rows == [1, 2, 3, 4, 5]
            cur = await con.cursor(query)
            assert [r[0] for r in await cur.fetch(3)] == [1, 2, 3]
            assert (await cur.fetchrow())[0] == 4
    finally:
        await con.close()
    assert calls == [
        ("_bind_exec", "CursorIterator", 2),
        ("_exec", "CursorIterator", 2),
        ("_exec", "CursorIterator", 2),
        ("_exec", "Cursor", 3),
        ("_exec", "Cursor", 1),
    ]


async def test_connection_attributes_tracers_read(connect_kwargs, monkeypatch) -> None:
    """Sentry, OpenTelemetry and ddtrace read ``_addr`` and ``_params``; Sentry and New
    Relic wrap ``connect_utils._connect_addr`` and read its ``addr``/``params``."""
    seen: list[dict[str, Any]] = []
    original = connect_utils._connect_addr

    async def traced(*args, **kwargs):
        seen.append(kwargs)
        return await original(*args, **kwargs)

    monkeypatch.setattr(connect_utils, "_connect_addr", traced)
    con = await ferropg.connect(**connect_kwargs)
    try:
        assert con._params.user and con._params.database
        assert isinstance(con._addr, (str, tuple))
        assert con._protocol is not None
        async with con.transaction():
            cur = await con.cursor("SELECT $1::int", 7)
            assert cur._query == "SELECT $1::int" and cur._args == (7,)
            assert cur._connection is con
        stmt = await con.prepare("SELECT 1")
        assert stmt._query == "SELECT 1" and stmt._connection is con
    finally:
        await con.close()
    assert len(seen) == 1
    assert seen[0]["addr"] == con._addr
    assert seen[0]["params"].user == con._params.user
    assert seen[0]["params"].database == con._params.database


# ------------------------------------------------------------------ install_as_asyncpg


def _run_child(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_install_as_asyncpg_aliases_every_path() -> None:
    paths = [p for p, _ in PATHS]
    out = _run_child(
        f"""
        import importlib, importlib.util, sys
        import ferropg
        ferropg.install_as_asyncpg()
        ferropg.install_as_asyncpg()  # idempotent

        import asyncpg
        assert asyncpg is ferropg
        assert importlib.util.find_spec("asyncpg") is not None  # piccolo checks this
        for path in {paths!r}:
            parts = path.split(".")
            for n in range(len(parts), 0, -1):
                try:
                    obj = importlib.import_module(".".join(parts[:n]))
                except ModuleNotFoundError:
                    continue
                for attr in parts[n:]:
                    obj = getattr(obj, attr)
                break
            real = ["ferropg", *parts[1:]]
            for n in range(len(real), 0, -1):
                try:
                    want = importlib.import_module(".".join(real[:n]))
                except ModuleNotFoundError:
                    continue
                for attr in real[n:]:
                    want = getattr(want, attr)
                break
            # (bound methods are made anew on each lookup: equal, not identical)
            assert obj is want or obj == want, path

        # Modules imported through the alias keep their own names and specs.
        import asyncpg.cluster
        assert asyncpg.cluster is sys.modules["ferropg.cluster"]
        assert asyncpg.cluster.__spec__.name == "ferropg.cluster"
        from asyncpg.pgproto.pgproto import UUID
        from asyncpg.cursor import BaseCursor, Cursor, CursorIterator
        assert UUID is ferropg.types.UUID and BaseCursor is ferropg.cursor._BaseCursor

        try:
            import asyncpg.no_such_module
        except ModuleNotFoundError as exc:
            assert exc.name == "asyncpg.no_such_module", exc.name
        else:
            raise AssertionError("asyncpg.no_such_module imported")
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_install_as_asyncpg_refuses_after_real_asyncpg() -> None:
    out = _run_child(
        """
        import sys, types
        sys.modules["asyncpg"] = types.ModuleType("asyncpg")  # as if asyncpg were imported
        import ferropg
        try:
            ferropg.install_as_asyncpg()
        except RuntimeError as exc:
            print("refused:", exc)
        """
    )
    assert out.startswith("refused: asyncpg is already imported")


def test_install_as_asyncpg_and_a_query(dsn: str) -> None:
    # The way an application meets it: install, then code that knows only asyncpg.
    out = _run_child(
        f"""
        import asyncio, uuid
        import ferropg
        ferropg.install_as_asyncpg()
        import asyncpg
        from asyncpg.pgproto.pgproto import UUID

        async def main():
            con = await asyncpg.connect({dsn!r})
            try:
                value = await con.fetchval("SELECT gen_random_uuid()")
                assert isinstance(value, UUID) and isinstance(value, uuid.UUID)
                try:
                    await con.execute("SELECT 1/0")
                except asyncpg.exceptions.DivisionByZeroError:
                    pass
            finally:
                await con.close()

        asyncio.run(main())
        print("ok")
        """
    )
    assert out.strip() == "ok"

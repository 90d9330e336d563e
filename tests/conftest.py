"""pytest fixtures shared by ferropg's tests: one PostgreSQL server per test session.

* ``cluster`` (session): a started :class:`ferropg.cluster.TempCluster`, stopped and removed
  at the end of the session; ``None`` when ``$PGDSN`` names a server to use instead.
* ``dsn`` (session): ``$PGDSN``, or the session cluster's ``postgresql://`` URI.
* ``connect_kwargs`` (session): keyword arguments for ``ferropg.connect()`` (host, port,
  user, database; or just ``dsn`` under ``$PGDSN``).
* ``managed_cluster``: the session cluster, skipping the test under ``$PGDSN``.
* ``pg_cluster``: the ``ferropg.cluster`` module itself.
* ``pgbouncer``: a :class:`pgbouncer.PgBouncer` in front of the session cluster
  (transaction pooling, 2 server connections used round robin, both open when the test
  starts), shared by the session: tests must not restart or reconfigure it.  A test during
  which it exits fails, and the next one gets it restarted.
* ``pgbouncer_factory``: makes private ones (``pgbouncer_factory(default_pool_size=1,
  settings={...})``, started), stopped at the end of the test; use it to restart or kill
  one.  A test during which one exits without being told to fails.
  Both skip under ``$PGDSN`` (no cluster to stand in front of).

Every ``async def test_...`` runs twice, on a fresh asyncio loop and on a fresh uvloop loop
(ids ``test_x[asyncio]`` and ``test_x[uvloop]``): :func:`pytest_generate_tests` parametrizes
it with the loop kinds and :func:`pytest_pyfunc_call` runs it with ``asyncio.Runner``.
Synchronous tests run once, as usual.

Tests that edit ``pg_hba.conf`` or restart the server should start their own cluster
(``pg_cluster.TempCluster()``) rather than disturb the shared one.  The marker
``needs_cluster`` documents such tests.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def _load_cluster_module() -> ModuleType:
    """``ferropg.cluster``; loaded from the source tree if the package cannot be imported.

    ``ferropg.cluster`` needs only the standard library, so it works from a checkout where
    the native extension has not been built yet.
    """
    try:
        from ferropg import cluster
    except ImportError:
        path = Path(__file__).resolve().parent.parent / "python" / "ferropg" / "cluster.py"
        spec = importlib.util.spec_from_file_location("_ferropg_cluster_from_source", path)
        if spec is None or spec.loader is None:
            raise
        cluster = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = cluster
        spec.loader.exec_module(cluster)
    return cluster


pg_cluster_module = _load_cluster_module()


def pytest_configure(config: pytest.Config) -> None:
    """Register ferropg's markers."""
    config.addinivalue_line(
        "markers",
        "needs_cluster: the test manages its own PostgreSQL server (skipped under $PGDSN)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``needs_cluster`` tests when ``$PGDSN`` points at an external server."""
    if not os.environ.get("PGDSN"):
        return
    skip = pytest.mark.skip(reason="$PGDSN is set: not managing PostgreSQL servers")
    for item in items:
        if "needs_cluster" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def pg_cluster() -> ModuleType:
    """The ``ferropg.cluster`` module."""
    return pg_cluster_module


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """A started TempCluster for the whole session (``None`` under ``$PGDSN``)."""
    if os.environ.get("PGDSN"):
        yield None
        return
    try:
        c = pg_cluster_module.TempCluster()
        settings = {"jit": "off"} if c.get_pg_version() >= (11, 0) else {}
        c.init()
        c.start(server_settings=settings)
    except pg_cluster_module.ClusterError as e:
        pytest.fail(f"cannot start a PostgreSQL server for the tests: {e}", pytrace=False)
    with c:
        yield c


@pytest.fixture(scope="session")
def dsn(cluster: Any) -> str:
    """``$PGDSN``, or the session cluster's DSN (TCP, user and database ``postgres``)."""
    return os.environ.get("PGDSN") or cluster.dsn()


@pytest.fixture(scope="session")
def connect_kwargs(cluster: Any) -> dict[str, Any]:
    """Keyword arguments for ``connect()`` that reach the test server."""
    if cluster is None:
        return {"dsn": os.environ["PGDSN"]}
    return cluster.connection_kwargs()


@pytest.fixture
def no_env_session_attrs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``PGTARGETSESSIONATTRS`` in the caller's environment must not change the
    outcomes of tests that route between servers."""
    monkeypatch.delenv("PGTARGETSESSIONATTRS", raising=False)


@pytest.fixture
def managed_cluster(cluster: Any) -> Any:
    """The session cluster; skips the test when ``$PGDSN`` is used instead."""
    if cluster is None:
        pytest.skip("$PGDSN is set: no managed cluster")
    return cluster


def _loop_factories() -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The event loops every ``async def`` test runs on, by test id."""
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    try:
        import uvloop
    except ImportError:  # make test installs it; a bare checkout may not have it
        uvloop = None
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


LOOP_FACTORIES = _loop_factories()
#: The parameter that carries the loop kind of an ``async def`` test (it is not an argument
#: of the test: the test sees it only in its id, ``test_x[asyncio]``, ``test_x[uvloop]``).
LOOP_PARAM = "loop_kind"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrizes every ``async def`` test with the loop kinds (asyncio, then uvloop)."""
    if not inspect.iscoroutinefunction(metafunc.function):
        return
    if LOOP_PARAM not in metafunc.fixturenames:
        # parametrize() takes only names the test uses: add ours to them (pytest drops it
        # from the fixtures to set up again, the function does not take it).
        metafunc.fixturenames.append(LOOP_PARAM)
    kinds = sorted(LOOP_FACTORIES)
    metafunc.parametrize(LOOP_PARAM, kinds, ids=kinds)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Runs an ``async def`` test to completion on a fresh loop of its kind."""
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function):
        return None
    factory = LOOP_FACTORIES[pyfuncitem.callspec.params[LOOP_PARAM]]
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(function(**kwargs))
    return True


@pytest.fixture(scope="session")
def _pgbouncer_session(cluster: Any) -> Iterator[Any]:
    """The session's shared pgbouncer (use the ``pgbouncer`` fixture)."""
    if cluster is None:
        pytest.skip("$PGDSN is set: no managed cluster to put pgbouncer in front of")
    from pgbouncer import PgBouncer, PgBouncerError

    try:
        bouncer = PgBouncer(cluster).start()
    except PgBouncerError as e:
        pytest.fail(f"cannot start pgbouncer for the tests: {e}", pytrace=False)
    try:
        yield bouncer
    finally:
        bouncer.close()


def _fail_if_pgbouncer_died(bouncer: Any) -> None:
    """Fails the test (in its teardown) when pgbouncer exited during it: it would fail
    every later test with a refused connection instead."""
    if bouncer.died:
        pytest.fail(
            f"pgbouncer exited during the test (status {bouncer.returncode}):\n"
            + "\n".join(bouncer.fatal_lines() or [bouncer.log()[-2000:]]),
            pytrace=False,
        )


@pytest.fixture
def pgbouncer(_pgbouncer_session: Any) -> Iterator[Any]:
    """The shared pgbouncer in front of the session cluster (transaction mode, 2 server
    connections used round robin), running and with both server connections open at the
    start of each test; see ``tests/pgbouncer.py``.  Tests must not restart it or change
    its settings (use ``pgbouncer_factory``)."""
    bouncer = _pgbouncer_session
    if bouncer.running:
        bouncer.warm()
    else:  # an earlier test stopped it, and failed for it
        bouncer.start()
    yield bouncer
    _fail_if_pgbouncer_died(bouncer)


@pytest.fixture
def pgbouncer_factory(cluster: Any) -> Iterator[Callable[..., Any]]:
    """Starts private pgbouncers in front of the session cluster (keyword arguments as for
    ``PgBouncer``); each is stopped and removed at the end of the test."""
    if cluster is None:
        pytest.skip("$PGDSN is set: no managed cluster to put pgbouncer in front of")
    from pgbouncer import PgBouncer

    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        bouncer = PgBouncer(cluster, **kwargs)
        made.append(bouncer)
        return bouncer.start()

    try:
        yield make
        for bouncer in made:
            _fail_if_pgbouncer_died(bouncer)
    finally:
        for bouncer in made:
            bouncer.close()

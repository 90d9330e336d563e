"""pytest fixtures shared by ferropg's tests: one PostgreSQL server per test session.

* ``cluster`` (session): a started :class:`ferropg.cluster.TempCluster`, stopped and removed
  at the end of the session; ``None`` when ``$PGDSN`` names a server to use instead.
* ``dsn`` (session): ``$PGDSN``, or the session cluster's ``postgresql://`` URI.
* ``connect_kwargs`` (session): keyword arguments for ``ferropg.connect()`` (host, port,
  user, database; or just ``dsn`` under ``$PGDSN``).
* ``managed_cluster``: the session cluster, skipping the test under ``$PGDSN``.
* ``pg_cluster``: the ``ferropg.cluster`` module itself.

Tests that edit ``pg_hba.conf`` or restart the server should start their own cluster
(``pg_cluster.TempCluster()``) rather than disturb the shared one.  The marker
``needs_cluster`` documents such tests.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
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
def managed_cluster(cluster: Any) -> Any:
    """The session cluster; skips the test when ``$PGDSN`` is used instead."""
    if cluster is None:
        pytest.skip("$PGDSN is set: no managed cluster")
    return cluster


def _loop_factories() -> dict[str, Any]:
    import asyncio

    factories: dict[str, Any] = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:  # make test installs it; a bare checkout may not have it
        uvloop = None
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


@pytest.fixture(params=sorted(_loop_factories()))
def run(request: pytest.FixtureRequest) -> Any:
    """``run(coro)``: runs a coroutine to completion on a fresh loop of each kind
    (the default asyncio loop, then uvloop), so every async test covers both."""
    import asyncio

    factory = _loop_factories()[request.param]

    def runner(coro: Any) -> Any:
        with asyncio.Runner(loop_factory=factory) as r:
            return r.run(coro)

    return runner

"""``target_session_attrs``: choosing among several servers by role, against real servers.

Tests on one primary use the session server; those that need a hot standby share one
primary/standby pair for the whole module (``pair``), since a base backup is the slow part.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

import ferropg
from ferropg import exceptions

pytestmark = pytest.mark.usefixtures("no_env_session_attrs")

IN_RECOVERY = "SELECT pg_catalog.pg_is_in_recovery()"


def _with_query(dsn: str, query: str) -> str:
    return f"{dsn}{'&' if '?' in dsn else '?'}{query}"


def _not_matched(attr: str) -> str:
    # asyncpg's wording, with the enum's repr: callers and asyncpg's tests compare it.
    return (
        "None of the hosts match the target attribute requirement "
        f"<SessionAttribute.{attr.replace('-', '_')}: '{attr}'>"
    )


async def _in_recovery(con: ferropg.Connection) -> bool:
    return await con.fetchval(IN_RECOVERY)


# ------------------------------------------------------------- one primary ----


@pytest.mark.parametrize("attr", ["any", "primary", "read-write", "prefer-standby"])
async def test_primary_matches(dsn: str, attr: str) -> None:
    con = await ferropg.connect(dsn, target_session_attrs=attr)
    try:
        assert await _in_recovery(con) is False
    finally:
        await con.close()


@pytest.mark.parametrize("attr", ["standby", "read-only"])
async def test_primary_does_not_match(dsn: str, attr: str) -> None:
    with pytest.raises(exceptions.TargetServerAttributeNotMatched) as info:
        await ferropg.connect(dsn, target_session_attrs=attr)
    assert str(info.value) == _not_matched(attr)


def test_not_matched_is_exported_like_asyncpg() -> None:
    assert ferropg.TargetServerAttributeNotMatched is exceptions.TargetServerAttributeNotMatched
    assert issubclass(exceptions.TargetServerAttributeNotMatched, exceptions.InternalClientError)


@pytest.mark.parametrize("how", ["argument", "dsn", "env"])
async def test_invalid_value(dsn: str, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    kwargs: dict[str, Any] = {}
    if how == "argument":
        kwargs["target_session_attrs"] = "master"
    elif how == "dsn":
        dsn = _with_query(dsn, "target_session_attrs=master")
    else:
        monkeypatch.setenv("PGTARGETSESSIONATTRS", "master")

    with pytest.raises(exceptions.ClientConfigurationError) as info:
        await ferropg.connect(dsn, **kwargs)
    assert isinstance(info.value, exceptions.InterfaceError)
    assert "target_session_attrs is expected to be one of" in str(info.value)
    assert "'master'" in str(info.value)


async def test_dsn_parameter(dsn: str) -> None:
    with pytest.raises(exceptions.TargetServerAttributeNotMatched):
        await ferropg.connect(_with_query(dsn, "target_session_attrs=standby"))
    # The argument wins over the DSN, and the parameter is not sent to the server as
    # a setting (it would refuse an unknown startup parameter).
    con = await ferropg.connect(
        _with_query(dsn, "target_session_attrs=standby"), target_session_attrs="primary"
    )
    await con.close()
    con = await ferropg.connect(_with_query(dsn, "target_session_attrs=read-write"))
    await con.close()


async def test_env_variable(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGTARGETSESSIONATTRS", "read-only")

    with pytest.raises(exceptions.TargetServerAttributeNotMatched):
        await ferropg.connect(dsn)
    # The argument and the DSN parameter both take precedence over the variable.
    con = await ferropg.connect(dsn, target_session_attrs="any")
    await con.close()
    con = await ferropg.connect(_with_query(dsn, "target_session_attrs=primary"))
    await con.close()


async def test_default_transaction_read_only_makes_primary_read_only(dsn: str) -> None:
    probe = await ferropg.connect(dsn)
    version = probe.get_server_version()
    await probe.close()
    if version.major < 14:
        pytest.skip("default_transaction_read_only is reported from PostgreSQL 14")
    ro = {"default_transaction_read_only": "on"}
    con = await ferropg.connect(dsn, server_settings=ro, target_session_attrs="read-only")
    try:
        assert await _in_recovery(con) is False
    finally:
        await con.close()
    with pytest.raises(exceptions.TargetServerAttributeNotMatched):
        await ferropg.connect(dsn, server_settings=ro, target_session_attrs="read-write")


async def test_pool_passes_target_session_attrs(dsn: str) -> None:
    with pytest.raises(exceptions.TargetServerAttributeNotMatched):
        await ferropg.create_pool(dsn, min_size=1, max_size=1, target_session_attrs="standby")
    async with ferropg.create_pool(
        dsn, min_size=1, max_size=1, target_session_attrs="primary"
    ) as pool:
        assert await pool.fetchval(IN_RECOVERY) is False


# ------------------------------------------------------ primary and standby ----


@pytest.fixture(scope="module")
def pair(pg_cluster: ModuleType) -> Iterator[tuple[Any, Any]]:
    """A primary and a streaming hot standby of it, for this module alone."""
    if os.environ.get("PGDSN"):
        pytest.skip("$PGDSN is set: not managing PostgreSQL servers")
    with pg_cluster.TempCluster(server_settings={"wal_level": "replica"}) as primary:
        primary.sql("CREATE ROLE replication WITH LOGIN REPLICATION")
        primary.trust_local_replication_by("replication")
        standby = pg_cluster.HotStandbyCluster(
            master=primary.get_connection_spec(), replication_user="replication"
        )
        try:
            standby.init()
            standby.start(server_settings={"hot_standby": True})
            yield primary, standby
        finally:
            standby.destroy()


def _multi_dsn(*clusters: Any) -> str:
    first = clusters[0].connection_kwargs()
    hosts = ",".join(f"{c.host}:{c.port}" for c in clusters)
    return f"postgresql://{first['user']}@{hosts}/{first['database']}"


#: For each attribute: whether the server chosen from (standby, primary) or
#: (primary, standby) is the standby; ``any`` takes the first that answers.
EXPECT_STANDBY = {
    "any": None,
    "primary": False,
    "read-write": False,
    "standby": True,
    "read-only": True,
    "prefer-standby": True,
}


@pytest.mark.needs_cluster
@pytest.mark.parametrize("standby_first", [True, False], ids=["standby-first", "primary-first"])
async def test_multi_host_dsn_picks_by_attribute(pair: tuple[Any, Any], standby_first: bool):
    primary, standby = pair
    order = (standby, primary) if standby_first else (primary, standby)

    for attr, want in EXPECT_STANDBY.items():
        con = await ferropg.connect(_multi_dsn(*order), target_session_attrs=attr)
        try:
            expected = standby_first if want is None else want
            assert await _in_recovery(con) is expected, attr
            assert con._addr[1] == (standby if expected else primary).port
        finally:
            await con.close()


@pytest.mark.needs_cluster
async def test_host_list_argument_and_rejected_candidates_are_closed(pair: tuple[Any, Any]) -> None:
    primary, standby = pair
    spec = primary.connection_kwargs()
    opened: list[ferropg.Connection] = []

    class Recording(ferropg.Connection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            opened.append(self)

    con = await ferropg.connect(
        host=f"{standby.host},{primary.host}",
        port=f"{standby.port},{primary.port}",
        user=spec["user"],
        database=spec["database"],
        connection_class=Recording,
        target_session_attrs="primary",
    )
    try:
        assert len(opened) == 2 and opened[1] is con
        assert opened[0].is_closed() and not con.is_closed()
        assert await _in_recovery(con) is False
    finally:
        await con.close()


@pytest.mark.needs_cluster
async def test_only_standby(pair: tuple[Any, Any]) -> None:
    _, standby = pair

    for attr in ("primary", "read-write"):
        with pytest.raises(exceptions.TargetServerAttributeNotMatched) as info:
            await ferropg.connect(standby.dsn(), target_session_attrs=attr)
        assert str(info.value) == _not_matched(attr)


@pytest.mark.needs_cluster
async def test_pool_over_multi_host_dsn(pair: tuple[Any, Any]) -> None:
    primary, standby = pair

    async with ferropg.create_pool(
        _multi_dsn(primary, standby), min_size=2, max_size=2, target_session_attrs="standby"
    ) as pool:
        assert await pool.fetchval(IN_RECOVERY) is True


# ------------------------------------------------------ unreachable servers ----


async def test_prefer_standby_falls_back_past_unreachable_host(
    connect_kwargs: dict[str, Any], pg_cluster: ModuleType
) -> None:
    if "host" not in connect_kwargs:
        pytest.skip("needs the session server's host and port")
    closed_port = pg_cluster.find_available_port()
    host = connect_kwargs["host"]

    kwargs = {
        **connect_kwargs,
        "host": [host, host],
        "port": [connect_kwargs["port"], closed_port],
    }
    con = await ferropg.connect(**kwargs, target_session_attrs="prefer-standby")
    try:
        assert await _in_recovery(con) is False
    finally:
        await con.close()
    # As in asyncpg, a connection error outranks "no server matched".
    with pytest.raises(OSError):
        await ferropg.connect(**kwargs, target_session_attrs="standby")

"""Tests of the test harness itself (``ferropg.cluster``), checked with ``psql``."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest


def _wait_for(predicate: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.fixture(scope="module")
def own(pg_cluster: ModuleType) -> Iterator[Any]:
    """A cluster of this module's own, free to have its HBA rules rewritten."""
    if os.environ.get("PGDSN"):
        pytest.skip("$PGDSN is set: not managing PostgreSQL servers")
    with pg_cluster.TempCluster() as c:
        c.sql("CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN")
        yield c


@pytest.fixture
def hba(own: Any) -> Iterator[Any]:
    """``own``, with its default HBA rules restored after the test."""
    yield own
    own.trust_local_connections()


# ------------------------------------------------------------------ basics ----


def test_select_1(managed_cluster: Any) -> None:
    assert managed_cluster.sql("select 1") == "1"
    assert managed_cluster.get_status() == "running"


def test_sql_output_format(managed_cluster: Any) -> None:
    out = managed_cluster.sql("select 1, 'a b'; select null::int, 'é'; select 2")
    assert out == "1|a b\n|é\n2"
    assert managed_cluster.sql("select 'x' where false") == ""


def test_sql_error_is_raised(pg_cluster: ModuleType, managed_cluster: Any) -> None:
    with pytest.raises(pg_cluster.ClusterError, match="no_such_table"):
        managed_cluster.sql("select 1; select * from no_such_table; select 2")


def test_sql_keeps_session_state(managed_cluster: Any) -> None:
    c = managed_cluster
    try:
        out = c.sql(
            "SET password_encryption = 'md5';\n"
            "CREATE ROLE fpg_md5 LOGIN PASSWORD 'x';\n"
            "SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = 'fpg_md5'"
        )
        assert out == "md5"
        # statements go one by one, so commands refused inside a transaction block work
        c.sql("CREATE DATABASE fpg_db; SELECT 1")
        assert c.sql("select 1 from pg_database where datname = 'fpg_db'") == "1"
        assert c.sql("select current_database()", database="fpg_db") == "fpg_db"
    finally:
        c.sql("DROP ROLE IF EXISTS fpg_md5; DROP DATABASE IF EXISTS fpg_db")


def test_accessors(managed_cluster: Any) -> None:
    c = managed_cluster
    assert c.host == "127.0.0.1"
    assert isinstance(c.port, int) and 0 < c.port < 65536
    assert (c.user, c.database) == ("postgres", "postgres")
    assert c.dsn() == f"postgresql://postgres@127.0.0.1:{c.port}/postgres"
    assert (
        c.dsn(user="a b", password="p@ss/w", database="d")
        == f"postgresql://a%20b:p%40ss%2Fw@127.0.0.1:{c.port}/d"
    )
    parsed = urllib.parse.urlsplit(c.dsn())
    assert (parsed.hostname, parsed.port, parsed.username) == ("127.0.0.1", c.port, "postgres")
    assert c.connection_kwargs() == {
        "host": "127.0.0.1",
        "port": c.port,
        "user": "postgres",
        "database": "postgres",
    }
    sock = os.path.join(c.socket_dir, f".s.PGSQL.{c.port}")
    assert len(sock) <= 107
    assert os.path.exists(sock)
    assert c.sql("show port") == str(c.port)
    assert c.sql("show unix_socket_directories") == c.socket_dir


def test_server_version(managed_cluster: Any) -> None:
    c = managed_cluster
    assert c.sql("show server_version").startswith(c.server_version)
    num = int(c.sql("show server_version_num"))
    v = c.get_pg_version()
    assert v.major == num // 10000
    assert v >= (10, 0)


def test_asyncpg_connection_spec(managed_cluster: Any) -> None:
    c = managed_cluster
    assert c.get_connection_spec() == {"host": c.socket_dir, "port": str(c.port)}
    assert c.is_managed()


def test_tcp_via_psql(managed_cluster: Any) -> None:
    assert managed_cluster.sql("select inet_server_addr()", host="127.0.0.1") == "127.0.0.1"
    assert managed_cluster.sql("select inet_server_addr()") == ""  # unix socket


# -------------------------------------------------------------------- HBA -----


def test_hba_reject_rule(pg_cluster: ModuleType, hba: Any) -> None:
    assert hba.sql("select current_user", user="alice", host="127.0.0.1") == "alice"
    hba.reset_hba()
    hba.add_hba_entry(type="local", auth_method="trust")
    hba.add_hba_entry(type="host", user="alice", auth_method="reject")
    hba.add_hba_entry(type="host", address="127.0.0.1/32", auth_method="trust")
    hba.reload()
    with pytest.raises(pg_cluster.ClusterError, match="pg_hba.conf rejects connection"):
        hba.sql("select 1", user="alice", host="127.0.0.1")
    assert hba.sql("select current_user", user="bob", host="127.0.0.1") == "bob"
    # the socket is still trusted for alice
    assert hba.sql("select current_user", user="alice") == "alice"


def test_hba_first_match_wins(hba: Any) -> None:
    hba.reset_hba()
    hba.add_hba_entry(type="local", auth_method="trust")
    hba.add_hba_entry(type="host", address="127.0.0.1/32", auth_method="trust")
    hba.add_hba_entry(type="host", user="alice", auth_method="reject")
    hba.reload()
    assert hba.sql("select current_user", user="alice", host="127.0.0.1") == "alice"
    with open(hba.hba_file) as f:
        lines = f.read().splitlines()
    assert lines == [
        "local all all trust",
        "host all all 127.0.0.1/32 trust",
        "host all alice 127.0.0.1/32 reject",
    ]


@pytest.mark.parametrize("method", ["md5", "scram-sha-256", "password"])
def test_password_methods(pg_cluster: ModuleType, hba: Any, method: str) -> None:
    encryption = "md5" if method == "md5" else "scram-sha-256"
    hba.sql(
        f"SET password_encryption = '{encryption}'; CREATE ROLE pw_user LOGIN PASSWORD 's3cret'"
    )
    try:
        hba.reset_hba()
        hba.add_hba_entry(type="local", auth_method="trust")
        hba.add_hba_entry(type="host", user="pw_user", address="127.0.0.1/32", auth_method=method)
        hba.reload()
        with pytest.raises(pg_cluster.ClusterError, match="password authentication failed"):
            hba.sql("select 1", user="pw_user", host="127.0.0.1", password="wrong")
        assert (
            hba.sql("select current_user", user="pw_user", host="127.0.0.1", password="s3cret")
            == "pw_user"
        )
    finally:
        hba.sql("DROP ROLE pw_user")


def test_hba_validation(pg_cluster: ModuleType, own: Any) -> None:
    with pytest.raises(ValueError):
        own.add_hba_entry(type="hots")


def test_reload_applies_settings(hba: Any) -> None:
    with open(os.path.join(hba.data_dir, "postgresql.auto.conf"), "a") as f:
        f.write("work_mem = '7MB'\n")
    try:
        hba.reload()
        assert hba.sql("show work_mem") == "7MB"
    finally:
        hba.sql("ALTER SYSTEM RESET work_mem")
        hba.reload()


# -------------------------------------------------------------- lifecycle -----


@pytest.mark.needs_cluster
def test_context_manager_lifecycle(pg_cluster: ModuleType) -> None:
    c = pg_cluster.TempCluster()
    assert c.get_status() == "not-initialized"
    with c:
        assert c.get_status() == "running"
        pid = c._postmaster_pid()
        data_dir, socket_dir, port = c.data_dir, c.socket_dir, c.port
        c.stop()
        assert c.get_status() == "stopped"
        c.start()
        assert c.port == port  # a restart keeps the port
        assert c.sql("select 1") == "1"
        assert c._postmaster_pid() != pid
        pid = c._postmaster_pid()
    assert not pg_cluster._pid_alive(pid)
    assert not os.path.exists(data_dir)
    assert not os.path.exists(socket_dir)


@pytest.mark.needs_cluster
def test_fixed_port_and_settings(pg_cluster: ModuleType) -> None:
    port = pg_cluster.find_available_port()
    with pg_cluster.TempCluster(port=port, server_settings={"work_mem": "5MB"}) as c:
        assert c.port == port
        assert c.sql("show work_mem") == "5MB"
        assert c.sql("show fsync") == "off"


@pytest.mark.needs_cluster
def test_password_superuser(pg_cluster: ModuleType) -> None:
    with pg_cluster.TempCluster(auth="scram-sha-256", password="topsecret") as c:
        assert c.sql("select 1") == "1"  # unix socket: trust
        assert "topsecret" in c.dsn()
        assert c.sql("select 1", host="127.0.0.1") == "1"  # default password is used
        with pytest.raises(pg_cluster.ClusterError, match="password authentication failed"):
            c.sql("select 1", host="127.0.0.1", password="nope")


@pytest.mark.needs_cluster
@pytest.mark.skipif(os.geteuid() != 0, reason="root only")
def test_runs_as_postgres_when_root(pg_cluster: ModuleType) -> None:
    with pg_cluster.TempCluster() as c:
        pw = pwd.getpwnam("postgres")
        assert os.stat(c.data_dir).st_uid == pw.pw_uid
        assert os.stat(c.socket_dir).st_uid == pw.pw_uid
        with open(f"/proc/{c._postmaster_pid()}/status") as f:
            uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
        assert set(uids) == {str(pw.pw_uid)}
        assert c.sql("select current_user") == "postgres"


@pytest.mark.needs_cluster
def test_watchdog_stops_server_of_killed_process(pg_cluster: ModuleType) -> None:
    """A test process killed with SIGKILL does not leave its server behind."""
    code = (
        "import importlib.util, sys, time\n"
        f'spec = importlib.util.spec_from_file_location("c", {pg_cluster.__file__!r})\n'
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "c = m.TempCluster(); c.init(); c.start()\n"
        "print(c.data_dir, c.socket_dir, c._postmaster_pid(), flush=True)\n"
        "time.sleep(120)\n"
    )
    # Leaving the with block closes the pipe (and waits for the process).
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            data_dir, socket_dir, pid = proc.stdout.readline().split()
            assert pg_cluster._pid_alive(int(pid))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert _wait_for(lambda: not pg_cluster._pid_alive(int(pid)))
            assert _wait_for(
                lambda: not os.path.exists(data_dir) and not os.path.exists(socket_dir)
            )
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.needs_cluster
def test_reset_wal_large_oids(pg_cluster: ModuleType) -> None:
    c = pg_cluster.TempCluster()
    try:
        c.init()
        c.reset_wal(oid=2147483648)
        c.start()
        c.sql("CREATE TYPE fpg_t AS (a int)")
        assert int(c.sql("select oid from pg_type where typname = 'fpg_t'")) >= 2147483648
    finally:
        c.destroy()


@pytest.mark.needs_cluster
def test_hot_standby(pg_cluster: ModuleType) -> None:
    with pg_cluster.TempCluster(server_settings={"wal_level": "replica"}) as primary:
        primary.sql("CREATE ROLE replication WITH LOGIN REPLICATION")
        primary.trust_local_replication_by("replication")
        standby = pg_cluster.HotStandbyCluster(
            master=primary.get_connection_spec(), replication_user="replication"
        )
        try:
            standby.init()
            standby.start(server_settings={"hot_standby": True})
            assert standby.sql("select pg_is_in_recovery()") == "t"
            primary.sql("CREATE TABLE fpg_repl AS SELECT 42 AS x")
            assert _wait_for(
                lambda: (
                    standby.sql("select count(*) from pg_class where relname = 'fpg_repl'") == "1"
                )
            )
            assert standby.sql("select x from fpg_repl") == "42"
        finally:
            standby.destroy()


def test_find_bindir(pg_cluster: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = pg_cluster.find_bindir()
    for name in ("postgres", "pg_ctl"):
        assert os.access(os.path.join(bindir, name), os.X_OK)
    monkeypatch.setenv("PGBIN", bindir)
    assert pg_cluster.find_bindir() == os.path.abspath(bindir)
    monkeypatch.setenv("PGINSTALLATION", "/nonexistent/pg")
    with pytest.raises(pg_cluster.ClusterError, match="PGINSTALLATION"):
        pg_cluster.find_bindir()


def test_version_parsing(pg_cluster: ModuleType) -> None:
    parse = pg_cluster._parse_version
    assert tuple(parse("postgres (PostgreSQL) 15.18 (Debian 15.18-1)")) == (15, 0, 18, "final", 0)
    assert tuple(parse("postgres (PostgreSQL) 9.6.24")) == (9, 6, 24, "final", 0)
    assert tuple(parse("postgres (PostgreSQL) 17beta2")) == (17, 0, 0, "beta", 2)
    assert tuple(parse("postgres (PostgreSQL) 18devel")) == (18, 0, 0, "devel", 0)

"""Connection service files: where they are found, what a service sets, and what wins
over it (arguments and the DSN) and what it wins over (``PG*`` variables)."""

import pytest

import ferropg
from ferropg import exceptions
from ferropg.connect_utils import SSLMode, resolve_params


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    for var in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE",
                "PGSERVICEFILE", "PGSYSCONFDIR", "PGSSLMODE", "PGPASSFILE"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def _write(path, text):
    path.write_text(text)
    return path


def test_service_parameters_and_precedence(clean_env, monkeypatch):
    f = _write(
        clean_env / "services.conf",
        "[main]\nhost=svchost\nport=6543\nuser=svcuser\ndbname=svcdb\n"
        "password=svcpw\nsslmode=disable\ntarget_session_attrs=read-only\n",
    )
    p = resolve_params(None, service="main", servicefile=str(f))
    assert p.addrs == [("svchost", 6543)]
    assert (p.user, p.database, p.password) == ("svcuser", "svcdb", "svcpw")
    assert p.tls.mode is SSLMode.disable
    assert p.target_session_attrs == "read-only"
    # The DSN and the arguments win over the service; the service wins over PG*.
    monkeypatch.setenv("PGUSER", "envuser")
    monkeypatch.setenv("PGHOST", "envhost")
    p = resolve_params(
        "postgresql://dsnuser@dsnhost/dsndb?service=main&sslmode=require",
        servicefile=str(f),
        port=1,
    )
    assert p.addrs == [("dsnhost", 1)]
    assert (p.user, p.database) == ("dsnuser", "dsndb")
    assert p.tls.mode is SSLMode.require
    # Nothing of the service is sent to the server as a setting.
    assert "service" not in p.server_settings


def test_where_services_are_found(clean_env, monkeypatch):
    _write(clean_env / ".pg_service.conf", "[home]\nhost=fromhome\n")
    assert resolve_params(None, service="home").addrs[0][0] == "fromhome"
    f = _write(clean_env / "env.conf", "[env]\nhost=fromenv\n")
    monkeypatch.setenv("PGSERVICEFILE", str(f))
    monkeypatch.setenv("PGSERVICE", "env")
    assert resolve_params(None).addrs[0][0] == "fromenv"
    sysconf = clean_env / "etc"
    sysconf.mkdir()
    _write(sysconf / "pg_service.conf", "[sys]\nhost=fromsys\n")
    monkeypatch.setenv("PGSYSCONFDIR", str(sysconf))
    assert resolve_params(None, service="sys").addrs[0][0] == "fromsys"
    with pytest.raises(exceptions.ClientConfigurationError, match='service "nowhere" not found'):
        resolve_params(None, service="nowhere")


async def test_connect_through_a_service(cluster, clean_env):
    f = _write(
        clean_env / "pg_service.conf",
        f"[db]\nhost=127.0.0.1\nport={cluster.port}\nuser={cluster.user}\ndbname=postgres\n",
    )

    con = await ferropg.connect("postgresql://?service=db", servicefile=str(f))
    assert await con.fetchval("SELECT current_database()") == "postgres"
    await con.close()


def test_service_file_from_the_dsn_and_no_shared_section(clean_env):
    f = _write(clean_env / "s.conf", "[DEFAULT]\npassword=leak\n[a]\nhost=ha\n")
    p = resolve_params(f"postgresql://?service=a&servicefile={f}")
    assert p.addrs[0][0] == "ha"
    assert p.password is None
    assert "servicefile" not in p.server_settings


def test_broken_service_file_does_not_quote_its_lines(clean_env):
    f = _write(clean_env / "bad.conf", "[a]\npassword secret123\n")
    with pytest.raises(exceptions.ClientConfigurationError) as info:
        resolve_params(None, service="a", servicefile=str(f))
    assert "secret123" not in str(info.value)

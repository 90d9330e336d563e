"""How connect() arguments, the DSN and the environment resolve (no server needed):
host lists with ports, the GSS options, and the asyncpg-shaped view of the result."""

import pytest

import ferropg
from ferropg import exceptions
from ferropg.connect_utils import SSLMode, _parse_connect_dsn_and_args, resolve_params


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch):
    for var in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE",
                "PGSSLMODE", "PGKRBSRVNAME", "PGGSSLIB", "PGPASSFILE"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def test_host_lists_may_carry_ports(monkeypatch):
    p = resolve_params("postgresql:///db?host=h1:1111,h2")
    assert p.addrs == [("h1", 1111), ("h2", 5432)]
    p = resolve_params("postgresql:///db?host=[2001:db8::1]:7000,[::1]")
    assert p.addrs == [("2001:db8::1", 7000), ("::1", 5432)]
    monkeypatch.setenv("PGHOST", "e1:2222,[::1]:3333,e3")
    monkeypatch.setenv("PGPORT", "4444")
    assert resolve_params(None).addrs == [("e1", 2222), ("::1", 3333), ("e3", 4444)]
    # An explicit port list still has to match the hosts.
    with pytest.raises(exceptions.ClientConfigurationError, match="could not match 2 port"):
        resolve_params(None, host=["a", "b", "c"], port=[1, 2])
    with pytest.raises(exceptions.ClientConfigurationError, match="invalid IPv6"):
        monkeypatch.setenv("PGHOST", "[::1")
        resolve_params(None)


def test_uri_details():
    # The user information ends at the first '@', as in libpq.
    p = resolve_params("postgresql://user:p@ss@host/db")
    assert (p.password, p.addrs) == ("p", [("ss@host", 5432)])
    p = resolve_params("postgresql://us%40r:p%40ss@h%40st:543%33/d%62")
    assert (p.user, p.password, p.addrs, p.database) == ("us@r", "p@ss", [("h@st", 5433)], "db")
    with pytest.raises(ValueError, match="invalid DSN: scheme"):
        resolve_params("pq:///db")


def test_gss_options(monkeypatch):
    p = resolve_params("postgresql://h/db?krbsrvname=fromdsn&gsslib=sspi")
    assert (p.krbsrvname, p.gsslib) == ("fromdsn", "sspi")
    assert "krbsrvname" not in p.server_settings
    monkeypatch.setenv("PGKRBSRVNAME", "fromenv")
    assert resolve_params(None, host="h").krbsrvname == "fromenv"
    assert resolve_params(None, host="h").gsslib == "gssapi"
    with pytest.raises(exceptions.ClientConfigurationError, match="gsslib parameter"):
        resolve_params(None, host="h", gsslib="kerberos")


def test_asyncpg_shaped_view(tmp_path):
    def view(**kw):
        args = dict(dsn=None, host=None, port=None, user="u", password=None, passfile=None,
                    database=None, ssl=None, server_settings=None, target_session_attrs=None)  # fmt: skip
        args.update(kw)
        return _parse_connect_dsn_and_args(**args)

    addrs, params = view(host="h", server_settings={"search_path": "x"})
    assert addrs == [("h", 5432)]
    assert params.sslmode is SSLMode.prefer and params.ssl is not None
    assert params.server_settings == {"search_path": "x"}
    # A Unix socket with nothing asked about TLS: no TLS, and ssl left as None.
    _, params = view(host=str(tmp_path))
    assert (params.ssl, params.sslmode) == (None, SSLMode.disable)
    _, params = view(host="h", ssl="disable")
    assert (params.ssl, params.sslmode, params.server_settings) == (False, SSLMode.disable, None)


def test_ports_given_as_such_win_over_ports_in_hosts(monkeypatch):
    p = resolve_params("postgresql:///db?host=h1:5434,h2", port=6000)
    assert p.addrs == [("h1", 6000), ("h2", 6000)]
    monkeypatch.setenv("PGHOST", "::1")
    assert resolve_params(None).addrs == [("::1", 5432)]


def test_socket_path_and_empty_password(tmp_path, monkeypatch):
    sock = str(tmp_path / ".s.PGSQL.6543")
    assert resolve_params(None, host=sock).addrs == [sock]
    monkeypatch.setenv("PGPASSWORD", "fromenv")
    assert resolve_params("postgresql://u:@h/db").password == "fromenv"


def test_client_encoding_other_than_utf8_is_refused():
    assert (
        "client_encoding"
        not in resolve_params("postgresql://h/db?client_encoding=utf-8").server_settings
    )
    with pytest.raises(exceptions.ClientConfigurationError, match="UTF8 only"):
        resolve_params("postgresql://h/db?client_encoding=latin1")


def test_password_stays_out_of_repr():
    assert "s3cret" not in repr(resolve_params("postgresql://u:s3cret@h/db"))


def test_unknown_sslmode_names():
    for bad in ("parse", "sometimes"):
        with pytest.raises(AttributeError):
            SSLMode.parse(bad)


async def test_libpq_client_keywords_are_never_sent_as_server_settings(dsn):
    """The core splits libpq's client keywords from the server settings: one this
    face does not implement (keepalives) no longer ends the connection with FATAL
    42704."""
    sep = "&" if "?" in dsn else "?"
    con = await ferropg.connect(dsn + sep + "keepalives=1&search_path=pg_catalog")
    try:
        assert await con.fetchval("SHOW search_path") == "pg_catalog"
    finally:
        await con.close()

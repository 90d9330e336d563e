"""TLS against a private cluster with ``ssl=on``: every ``sslmode``, the fallbacks of
``allow`` and ``prefer`` that ``pg_hba.conf`` forces, certificate checks, client
certificates, TLS options from the DSN and the environment, and cancellation over TLS.

The certificates are made here with the ``openssl`` command (a CA, a server certificate
for localhost, a client certificate, and a CA that signed none of them).
"""

import asyncio
import ssl
import subprocess

import pytest

import ferropg
from ferropg import cluster as pg_cluster
from ferropg import exceptions
from ferropg.connect_utils import SSLMode

pytestmark = pytest.mark.needs_cluster

IS_TLS = "SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()"


def _openssl(cwd, *args):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _signed(cwd, name, subject, ext=None):
    _openssl(cwd, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", "-subj", subject)  # fmt: skip
    extra = ["-extfile", ext] if ext else []
    _openssl(cwd, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", *extra)  # fmt: skip


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    for ca, subject in (("ca", "/CN=ferropg test CA"), ("other", "/CN=unrelated CA")):
        _openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key",
                 "-out", f"{ca}.crt", "-days", "2", "-subj", subject)  # fmt: skip
    # Named for localhost only: 127.0.0.1 reaches the server under a name it does not bear.
    (d / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    _signed(d, "server", "/CN=localhost", "san.ext")
    _signed(d, "client", "/CN=u_cert")
    return d


@pytest.fixture(scope="module")
def tls_cluster(certs):
    settings = {
        "ssl": "on",
        "ssl_cert_file": str(certs / "server.crt"),
        "ssl_key_file": str(certs / "server.key"),
        "ssl_ca_file": str(certs / "ca.crt"),
    }
    with pg_cluster.TempCluster(server_settings=settings) as c:
        c.sql("CREATE ROLE u_ssl LOGIN; CREATE ROLE u_plain LOGIN; CREATE ROLE u_cert LOGIN")
        c.sql("SET password_encryption = 'scram-sha-256'; CREATE ROLE u_pw LOGIN PASSWORD 'pw'")
        c.reset_hba()
        c.add_hba_entry(type="local", auth_method="trust")
        rules = [
            ("hostssl", "u_ssl", "trust"),
            ("hostnossl", "u_plain", "trust"),
            ("hostssl", "u_cert", "cert"),
            ("host", "u_pw", "scram-sha-256"),
        ]
        for address in ("127.0.0.1/32", "::1/128"):
            for kind, user, method in rules:
                c.add_hba_entry(type=kind, user=user, address=address, auth_method=method)
                # Only that way: the catch-all below must not let the user in another.
                c.add_hba_entry(type="host", user=user, address=address, auth_method="reject")
            c.add_hba_entry(type="host", address=address, auth_method="trust")
        c.reload()
        yield c


def _kw(c, **kw):
    return {"host": "127.0.0.1", "port": c.port, "user": "postgres", "database": "postgres", **kw}


async def _tls_of(con):
    try:
        return await con.fetchval(IS_TLS)
    finally:
        await con.close()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("disable", False), ("allow", False), ("prefer", True), ("require", True), (None, True)],
)
async def test_sslmodes(tls_cluster, mode, expected):
    con = await ferropg.connect(**_kw(tls_cluster, ssl=mode))
    assert await _tls_of(con) is expected


async def test_certificate_checks(tls_cluster, certs):
    ca, other = str(certs / "ca.crt"), str(certs / "other.crt")

    for mode in ("verify-ca", "verify-full"):
        dsn = f"postgresql://postgres@localhost:{tls_cluster.port}/postgres"
        con = await ferropg.connect(f"{dsn}?sslmode={mode}&sslrootcert={ca}")
        assert await _tls_of(con) is True
        with pytest.raises(ssl.SSLCertVerificationError):
            await ferropg.connect(f"{dsn}?sslmode={mode}&sslrootcert={other}")
    # The certificate names localhost, not 127.0.0.1: only verify-full looks at names.
    by_ip = f"postgresql://postgres@127.0.0.1:{tls_cluster.port}/postgres?sslrootcert={ca}"
    con = await ferropg.connect(f"{by_ip}&sslmode=verify-ca")
    assert await _tls_of(con) is True
    with pytest.raises(ssl.SSLCertVerificationError):
        await ferropg.connect(f"{by_ip}&sslmode=verify-full")
    # A context of one's own is used as it is; True means the default context,
    # which does not know this CA.
    ctx = ssl.create_default_context(cafile=ca)
    con = await ferropg.connect(**_kw(tls_cluster, ssl=ctx, host="localhost"))
    assert await _tls_of(con) is True
    with pytest.raises(ssl.SSLCertVerificationError):
        await ferropg.connect(**_kw(tls_cluster, ssl=True, host="localhost"))


async def test_system_roots(tls_cluster, certs, monkeypatch):
    # sslrootcert=system (libpq 16): the platform's roots, verify-full by default and
    # no weaker mode. OpenSSL's default paths honour SSL_CERT_FILE, which stands in for
    # the platform store here: the test CA, or another one.
    dsn = f"postgresql://postgres@localhost:{tls_cluster.port}/postgres?sslrootcert=system"
    monkeypatch.setenv("SSL_CERT_FILE", str(certs / "ca.crt"))
    con = await ferropg.connect(dsn)
    assert await _tls_of(con) is True
    await con.close()
    con = await ferropg.connect(f"{dsn}&sslmode=verify-full")
    assert await _tls_of(con) is True
    await con.close()
    # verify-full by default: the certificate does not name 127.0.0.1.
    by_ip = dsn.replace("localhost", "127.0.0.1")
    with pytest.raises(ssl.SSLCertVerificationError):
        await ferropg.connect(by_ip)
    for weak in ("disable", "prefer", "require", "verify-ca"):
        with pytest.raises(exceptions.ClientConfigurationError, match=f'weak sslmode "{weak}"'):
            await ferropg.connect(f"{dsn}&sslmode={weak}")
    monkeypatch.setenv("SSL_CERT_FILE", str(certs / "other.crt"))
    with pytest.raises(ssl.SSLCertVerificationError):
        await ferropg.connect(dsn)


async def test_missing_root_certificate(tls_cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))

    # require checks nothing without ~/.postgresql/root.crt; verify-ca cannot.
    con = await ferropg.connect(**_kw(tls_cluster, ssl="require"))
    assert await _tls_of(con) is True
    with pytest.raises(exceptions.ClientConfigurationError, match="root certificate file"):
        await ferropg.connect(**_kw(tls_cluster, ssl="verify-ca"))


async def test_dot_postgresql_defaults(tls_cluster, certs, tmp_path, monkeypatch):
    home = tmp_path / ".postgresql"
    home.mkdir()
    for src, dst in (("ca.crt", "root.crt"), ("client.crt", "postgresql.crt")):
        (home / dst).write_bytes((certs / src).read_bytes())
    key = home / "postgresql.key"
    key.write_bytes((certs / "client.key").read_bytes())
    key.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))

    con = await ferropg.connect(**_kw(tls_cluster, ssl="verify-full", host="localhost"))
    assert await _tls_of(con) is True
    con = await ferropg.connect(**_kw(tls_cluster, ssl="verify-ca", user="u_cert"))
    assert await con.fetchval("SELECT current_user") == "u_cert"
    await con.close()


async def test_hba_decides_the_fallback(tls_cluster):
    # allow starts without TLS; a hostssl-only user makes it try again with TLS.
    con = await ferropg.connect(**_kw(tls_cluster, ssl="allow", user="u_ssl"))
    assert await _tls_of(con) is True
    # prefer starts with TLS; a hostnossl-only user makes it try again without.
    con = await ferropg.connect(**_kw(tls_cluster, ssl="prefer", user="u_plain"))
    assert await _tls_of(con) is False
    with pytest.raises(exceptions.InvalidAuthorizationSpecificationError):
        await ferropg.connect(**_kw(tls_cluster, ssl="disable", user="u_ssl"))
    with pytest.raises(exceptions.InvalidAuthorizationSpecificationError):
        await ferropg.connect(**_kw(tls_cluster, ssl="require", user="u_plain"))
    # A wrong password stays the error the caller hears, after the retry without TLS.
    with pytest.raises(exceptions.InvalidPasswordError):
        await ferropg.connect(**_kw(tls_cluster, ssl="prefer", user="u_pw", password="no"))
    con = await ferropg.connect(**_kw(tls_cluster, ssl="prefer", user="u_pw", password="pw"))
    assert await _tls_of(con) is True


async def test_channel_binding(tls_cluster, monkeypatch):
    def dsn(user, sslmode, binding):
        return (
            f"postgresql://{user}:pw@127.0.0.1:{tls_cluster.port}/postgres"
            f"?sslmode={sslmode}&channel_binding={binding}"
        )

    # The server offers SCRAM-SHA-256-PLUS over TLS. With require, a connection that
    # succeeds was bound: the server checked the client's hash of its certificate.
    for binding in ("require", "prefer", "disable"):
        con = await ferropg.connect(dsn("u_pw", "require", binding))
        assert await _tls_of(con) is True
        await con.close()
    # Every way of logging in without binding is refused when it is required: no TLS,
    # or a server that asks for no password at all (trust over TLS).
    for user, sslmode in (("u_pw", "disable"), ("u_ssl", "require")):
        with pytest.raises(exceptions.InterfaceError, match="channel binding is required"):
            await ferropg.connect(dsn(user, sslmode, "require"))
    # The environment's PGCHANNELBINDING counts as libpq's does.
    monkeypatch.setenv("PGCHANNELBINDING", "require")
    with pytest.raises(exceptions.InterfaceError, match="channel binding is required"):
        await ferropg.connect(**_kw(tls_cluster, ssl="disable", user="u_pw", password="pw"))
    monkeypatch.delenv("PGCHANNELBINDING")
    with pytest.raises(exceptions.ClientConfigurationError, match="channel_binding"):
        await ferropg.connect(dsn("u_pw", "require", "always"))


async def test_client_certificates(tls_cluster, certs, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    key = tmp_path / "client.key"
    key.write_bytes((certs / "client.key").read_bytes())
    key.chmod(0o600)

    dsn = (
        f"postgresql://u_cert@127.0.0.1:{tls_cluster.port}/postgres?sslmode=verify-ca"
        f"&sslrootcert={certs / 'ca.crt'}&sslcert={certs / 'client.crt'}&sslkey={key}"
    )
    con = await ferropg.connect(dsn)
    assert await con.fetchval("SELECT current_user") == "u_cert"
    await con.close()
    # Without the certificate the cert rule turns the user away.
    with pytest.raises(exceptions.InvalidAuthorizationSpecificationError):
        await ferropg.connect(**_kw(tls_cluster, ssl="require", user="u_cert"))
    # The same options from the environment.
    monkeypatch.setenv("PGSSLMODE", "verify-ca")
    monkeypatch.setenv("PGSSLROOTCERT", str(certs / "ca.crt"))
    monkeypatch.setenv("PGSSLCERT", str(certs / "client.crt"))
    monkeypatch.setenv("PGSSLKEY", str(key))
    con = await ferropg.connect(**_kw(tls_cluster, user="u_cert"))
    assert await con.fetchval("SELECT current_user") == "u_cert"
    await con.close()


async def test_cancel_over_tls(tls_cluster):
    # u_ssl may only come in over TLS; its queries are cancelled all the same.
    con = await ferropg.connect(**_kw(tls_cluster, ssl="require", user="u_ssl"))
    with pytest.raises(asyncio.TimeoutError):
        await con.fetchval("SELECT pg_sleep(30)", timeout=0.2)
    assert await con.fetchval("SELECT 1") == 1
    assert await _tls_of(con) is True


async def test_server_without_tls(cluster):
    kw = {"host": "127.0.0.1", "port": cluster.port, "user": cluster.user}
    con = await ferropg.connect(**kw, ssl="prefer")
    # The cancel request goes without TLS too, as the connection did.
    with pytest.raises(asyncio.TimeoutError):
        await con.fetchval("SELECT pg_sleep(30)", timeout=0.2)
    assert await _tls_of(con) is False
    with pytest.raises(ConnectionError, match="rejected SSL upgrade"):
        await ferropg.connect(**kw, ssl="require")
    # A Unix socket never uses TLS, whatever is asked.
    con = await ferropg.connect(
        host=cluster.socket_dir, port=cluster.port, user=cluster.user, ssl="require"
    )
    assert await con.fetchval("SELECT 1") == 1
    await con.close()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"E\x00\x00\x00\x0aSFATAL\x00\x00", "error response during SSL exchange"),
        (b"SX", "rejected SSL upgrade"),  # a byte after the answer: injected
        (b"N", "rejected SSL upgrade"),  # where TLS is required
    ],
)
async def test_hostile_ssl_answers(answer, message):
    # A peer that answers the SSLRequest itself, as a man in the middle could.
    answered = asyncio.Event()

    async def answer_once(reader, writer):
        await reader.readexactly(8)
        writer.write(answer)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        answered.set()

    server = await asyncio.start_server(answer_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ConnectionError, match=message):
            await ferropg.connect(host="127.0.0.1", port=port, user="u", ssl="require")
        await asyncio.wait_for(answered.wait(), 10)
    finally:
        server.close()
        await server.wait_closed()


async def test_bad_tls_options(cluster):
    kw = {"host": "127.0.0.1", "port": cluster.port, "user": cluster.user}
    with pytest.raises(exceptions.ClientConfigurationError, match="sslmode"):
        await ferropg.connect(**kw, ssl="sometimes")
    with pytest.raises(exceptions.ClientConfigurationError, match="direct TLS requires"):
        await ferropg.connect(**kw, ssl="prefer", direct_tls=True)
    with pytest.raises(exceptions.ClientConfigurationError, match="sslnegotiation"):
        await ferropg.connect(
            f"postgresql://{cluster.user}@127.0.0.1:{cluster.port}/postgres?sslnegotiation=later"
        )


def test_sslmode_enum():
    assert SSLMode.parse("verify-full") is SSLMode.verify_full
    assert SSLMode.parse(SSLMode.allow) is SSLMode.allow
    assert SSLMode.disable < SSLMode.prefer < SSLMode.verify_ca
    with pytest.raises(AttributeError):
        SSLMode.parse("sometimes")


def test_blocking_face_over_tls(tls_cluster, certs):
    # The blocking face keeps the loop's TLS transport (no direct socket reads): the
    # same rules, cached statements, cancellation and the DB-API on top.
    import ferropg.dbapi
    import ferropg.sync

    with ferropg.sync.connect(**_kw(tls_cluster, ssl="require", user="u_ssl")) as con:
        for _ in range(3):
            assert con.fetchval(IS_TLS) is True
            assert con.fetchval("SELECT $1::int", 7) == 7
        with pytest.raises(TimeoutError):
            con.execute("SELECT pg_sleep(30)", timeout=0.2)
        assert con.fetchrow("SELECT 1 AS one")["one"] == 1
    with ferropg.dbapi.connect(**_kw(tls_cluster, ssl="require", user="u_ssl")) as db:
        cur = db.cursor()
        cur.execute("SELECT %s::text", ["over tls"])
        assert cur.fetchone() == ("over tls",)

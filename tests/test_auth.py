"""Every authentication method the foundation supports, against a cluster of its own.

pg_hba.conf is rewritten here, so these tests run on a private server rather than the
shared session cluster.
"""

import pytest

import ferropg
from ferropg import cluster as pg_cluster
from ferropg import exceptions

USERS = {
    # user: (hba method, password_encryption used to store the password)
    "u_cleartext": ("password", "scram-sha-256"),
    "u_md5": ("md5", "md5"),
    "u_scram": ("scram-sha-256", "scram-sha-256"),
    "u_md5_scram_stored": ("md5", "scram-sha-256"),  # md5 rule, SCRAM verifier: server uses SCRAM
}
PASSWORD = "s3cr&t pässword"


@pytest.fixture(scope="module")
def auth_cluster():
    with pg_cluster.TempCluster() as c:
        for user, (_method, encryption) in USERS.items():
            c.sql(
                f"SET password_encryption = '{encryption}'; "
                f"CREATE ROLE {user} LOGIN PASSWORD '{PASSWORD}'"
            )
        c.sql("CREATE ROLE u_trust LOGIN; CREATE ROLE u_reject LOGIN PASSWORD 'x'")
        c.reset_hba()
        c.add_hba_entry(type="local", auth_method="trust")
        for user, (method, _enc) in USERS.items():
            c.add_hba_entry(type="host", user=user, address="127.0.0.1/32", auth_method=method)
        c.add_hba_entry(type="host", user="u_reject", address="127.0.0.1/32", auth_method="reject")
        c.add_hba_entry(type="host", address="127.0.0.1/32", auth_method="trust")
        c.reload()
        yield c


def _connect(c, user, password=None):
    return ferropg.connect(
        host="127.0.0.1", port=c.port, user=user, database="postgres", password=password
    )


@pytest.mark.parametrize("user", sorted(USERS))
async def test_password_methods(auth_cluster, user):
    con = await _connect(auth_cluster, user, PASSWORD)
    assert await con.fetchval("SELECT current_user") == user
    await con.close()

    with pytest.raises(exceptions.InvalidPasswordError):
        await _connect(auth_cluster, user, "wrong")
    with pytest.raises(exceptions.InvalidPasswordError):
        await _connect(auth_cluster, user, None)


async def test_callable_password(auth_cluster):
    async def get_password():
        return PASSWORD

    con = await _connect(auth_cluster, "u_scram", get_password)
    assert await con.fetchval("SELECT 1") == 1
    await con.close()
    con = await _connect(auth_cluster, "u_md5", lambda: PASSWORD)
    assert await con.fetchval("SELECT 1") == 1
    await con.close()


async def test_trust_and_reject(auth_cluster):
    con = await _connect(auth_cluster, "u_trust")
    assert await con.fetchval("SELECT current_user") == "u_trust"
    await con.close()
    with pytest.raises(exceptions.InvalidAuthorizationSpecificationError) as info:
        await _connect(auth_cluster, "u_reject", "x")
    assert "rejects connection" in info.value.message


async def test_password_in_dsn(auth_cluster):
    dsn = auth_cluster.dsn(user="u_scram", password=PASSWORD)
    con = await ferropg.connect(dsn)
    assert await con.fetchval("SELECT current_user") == "u_scram"
    await con.close()


async def test_password_from_passfile(auth_cluster, tmp_path, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{auth_cluster.port}:postgres:u_scram:{PASSWORD}\n")
    passfile.chmod(0o600)

    con = await ferropg.connect(
        host="127.0.0.1",
        port=auth_cluster.port,
        user="u_scram",
        database="postgres",
        passfile=str(passfile),
    )
    assert await con.fetchval("SELECT current_user") == "u_scram"
    await con.close()
    # No entry for this user: no password, and the server asks for one.
    with pytest.raises(exceptions.InvalidPasswordError):
        await _connect(auth_cluster, "u_md5")

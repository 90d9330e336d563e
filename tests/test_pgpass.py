"""The password file: which entry wins, wildcards, escapes, Unix sockets as localhost,
the places it is looked for, and the permission rule (no server needed)."""

import pytest

from ferropg.connect_utils import resolve_params

ENTRIES = r"""
# comment
abc:*:*:user:for user@abc
localhost:*:*:*:for localhost
cde:5433:*:*:for cde:5433
*:*:*:testuser:for testuser
*:*:testdb:*:for testdb
*:*:test\:db:test\\:with escapes
"""


@pytest.fixture
def passfile(tmp_path, monkeypatch):
    for var in ("PGPASSWORD", "PGPASSFILE", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "pgpass"
    path.write_text(ENTRIES)
    path.chmod(0o600)
    return path


def _password(**kw):
    return resolve_params(None, **kw).password


def test_first_matching_entry(passfile):
    f = str(passfile)
    assert _password(host="abc", user="user", passfile=f) == "for user@abc"
    assert _password(host="cde", port=5433, user="x", passfile=f) == "for cde:5433"
    assert _password(host="cde", port=5432, user="testuser", passfile=f) == "for testuser"
    assert _password(host="zzz", user="x", database="testdb", passfile=f) == "for testdb"
    assert _password(host="zzz", user="x", database="other", passfile=f) is None
    # Each host in turn; the first host with a matching entry wins.
    assert _password(host=["zzz", "abc"], user="user", passfile=f) == "for user@abc"
    # Fields are compared as written (asyncpg's rule), escapes included.
    assert _password(host="q", user=r"test\\", database=r"test\:db", passfile=f) == ("with escapes")


def test_unix_socket_is_localhost(passfile, tmp_path):
    assert _password(host=str(tmp_path), user="x", passfile=str(passfile)) == "for localhost"


def test_explicit_passwords_win(passfile, monkeypatch):
    f = str(passfile)
    assert _password(host="abc", user="user", password="given", passfile=f) == "given"
    dsn = f"postgresql://user:indsn@abc/db?passfile={f}"
    assert resolve_params(dsn).password == "indsn"
    monkeypatch.setenv("PGPASSWORD", "fromenv")
    assert _password(host="abc", user="user", passfile=f) == "fromenv"


def test_where_the_file_is_looked_for(passfile, tmp_path, monkeypatch):
    # The DSN's passfile, then PGPASSFILE, then ~/.pgpass; never sent to the server.
    params = resolve_params(f"postgresql://user@abc/db?passfile={passfile}")
    assert params.password == "for user@abc"
    assert "passfile" not in params.server_settings
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    assert _password(host="abc", user="user") == "for user@abc"
    monkeypatch.delenv("PGPASSFILE")
    assert _password(host="abc", user="user") is None
    home_file = tmp_path / ".pgpass"
    home_file.write_text("abc:*:*:user:from home\n")
    home_file.chmod(0o600)
    assert _password(host="abc", user="user") == "from home"


def test_readable_by_others_is_ignored(passfile):
    passfile.chmod(0o644)
    with pytest.warns(UserWarning, match="has group or world access"):
        assert _password(host="abc", user="user", passfile=str(passfile)) is None


def test_not_a_file(tmp_path, passfile):
    with pytest.warns(UserWarning, match="is not a plain file"):
        assert _password(host="abc", user="user", passfile=str(tmp_path)) is None
    assert _password(host="abc", user="user", passfile=str(tmp_path / "missing")) is None

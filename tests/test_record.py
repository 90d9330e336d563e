"""Record semantics: asyncpg's, not a namedtuple's."""

import pickle

import pytest

import ferropg
from ferropg.protocol.protocol import _create_record


async def test_record_from_query(dsn):
    con = await ferropg.connect(dsn)
    try:
        r = await con.fetchrow("SELECT 1 AS a, 'x' AS b, NULL AS c")
    finally:
        await con.close()
    assert isinstance(r, ferropg.Record)
    assert r[0] == 1 and r[-1] is None and r["b"] == "x"
    assert r[0:2] == (1, "x") and isinstance(r[0:2], tuple) and r[::-1] == (None, "x", 1)
    assert len(r) == 3
    assert list(r) == [1, "x", None]
    assert list(r.keys()) == ["a", "b", "c"]
    assert list(r.values()) == [1, "x", None]
    assert list(r.items()) == [("a", 1), ("b", "x"), ("c", None)]
    assert dict(r) == {"a": 1, "b": "x", "c": None}
    assert r.get("a") == 1 and r.get("zz") is None and r.get("zz", 5) == 5
    assert "a" in r and "zz" not in r and 1 not in r
    assert r == (1, "x", None) and r != [1, "x", None]
    assert hash(r) == hash((1, "x", None))
    assert repr(r) == "<Record a=1 b='x' c=None>"
    with pytest.raises(IndexError, match="record index out of range"):
        r[3]
    with pytest.raises(KeyError):
        r["nope"]
    with pytest.raises(TypeError):
        r[0] = 1
    with pytest.raises(AttributeError):
        r.a  # noqa: B018 - attribute access is only for user record classes
    with pytest.raises(TypeError):
        pickle.dumps(r)
    with pytest.raises(TypeError):
        ferropg.Record()


async def test_duplicate_column_names(dsn):
    con = await ferropg.connect(dsn)
    try:
        r = await con.fetchrow("SELECT 1 AS a, 2 AS b, 3 AS a")
    finally:
        await con.close()
    assert r["a"] == 3
    assert list(r.keys()) == ["a", "b", "a"]
    assert list(r.items()) == [("a", 1), ("b", 2), ("a", 3)]
    assert repr(r) == "<Record a=1 b=2 a=3>"


def test_ordering_is_the_values_tuples():
    r1 = _create_record({"a": 0, "b": 1}, (1, 2))
    r2 = _create_record({"x": 0, "y": 1}, (1, 3))
    assert r1 < r2 and r2 > r1 and r1 <= (1, 2) and r1 == _create_record({"q": 0, "r": 1}, (1, 2))
    assert sorted([r2, r1]) == [r1, r2]
    with pytest.raises(TypeError):
        r1 < [1, 2]  # noqa: B015
    empty = _create_record(None, ())
    assert empty == () and not empty and repr(empty) == "<Record>"


def test_invalid_descriptor_is_runtime_error():
    with pytest.raises(RuntimeError, match="invalid record descriptor"):
        _create_record({"spam": 123}, (1,))["spam"]
    with pytest.raises(RuntimeError):
        repr(_create_record({"a": 0}, (1, 2)))
    items = _create_record({"a": 0, "b": 1}, (42,)).items()
    assert list(items) == [("a", 42)]
    assert list(items) == []

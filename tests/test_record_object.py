"""The Record object itself: GC tracking, reference counts, subclasses, the freelist,
deep nesting, cycles. Record *semantics* are in test_record.py."""

import asyncio
import copy
import datetime
import decimal
import gc
import pickle
import sys
import threading
import time
import uuid
import weakref

import pytest

import ferropg
from ferropg import _native
from ferropg.protocol.protocol import _create_record

R_A = {"a": 0}
R_AB = {"a": 0, "b": 1}


def rec(*values, cls=None):
    """A record with columns c0, c1, ... over `values`."""
    return _create_record({f"c{i}": i for i in range(len(values))}, values, cls=cls)


class Target:
    """Something weak-referenceable to put inside a cycle."""


class MyRecord(ferropg.Record):
    """A user record class with attribute access."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class SlotRecord(ferropg.Record):
    """A subclass without a __dict__."""

    __slots__ = ()


def untracked_tuple(*values):
    t = tuple(values)
    gc.collect()  # CPython untracks tuples of atoms during a collection
    assert not gc.is_tracked(t)
    return t


# --- GC tracking ------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        (),
        (1, "x", None, 1.5, True, b"raw"),
        (decimal.Decimal("1.5"), datetime.datetime.now(), datetime.date.today()),
        (datetime.timedelta(1), datetime.time(1, 2), 10**40, bytearray(b"x")),
    ],
    ids=["empty", "atoms", "decimal-datetime", "more-atoms"],
)
def test_atoms_are_not_tracked(values):
    assert not gc.is_tracked(rec(*values))


@pytest.mark.parametrize(
    "value",
    [[1], [], {"k": [1]}, {1, 2}, Target(), lambda: None, (1, [2])],
    ids=["list", "empty-list", "dict", "set", "instance", "function", "tuple-with-list"],
)
def test_containers_are_tracked(value):
    assert gc.is_tracked(rec(1, value, "x"))


def test_untracked_dict_still_tracks():
    # A dict of atoms is untracked only until something else is put in it, so a
    # record holding one must stay visible to the collector.
    d = {"k": 1}
    assert not gc.is_tracked(d)
    assert gc.is_tracked(rec(d))


def test_nested_immutable_containers():
    assert not gc.is_tracked(rec(untracked_tuple(1, 2)))
    assert gc.is_tracked(rec(tuple([1, 2])))  # fresh tuples are tracked
    assert not gc.is_tracked(rec(rec(1, "x")))
    assert gc.is_tracked(rec(rec([1])))
    assert not gc.is_tracked(rec(rec(1, cls=SlotRecord)))
    assert gc.is_tracked(rec(rec(1, cls=MyRecord)))


def test_subclass_tracking():
    assert gc.is_tracked(rec(1, cls=MyRecord))  # has a __dict__
    assert not gc.is_tracked(rec(1, cls=SlotRecord))
    assert gc.is_tracked(rec([1], cls=SlotRecord))


def test_iterators_follow_the_record():
    atoms, boxes = rec(1, 2), rec([1])
    assert not gc.is_tracked(iter(atoms)) and not gc.is_tracked(atoms.items())
    assert gc.is_tracked(iter(boxes)) and gc.is_tracked(boxes.items())


async def test_query_rows_are_not_tracked(dsn):
    con = await ferropg.connect(dsn)
    try:
        plain = await con.fetch(
            "SELECT i, i::text AS t, NULL AS n, 1.5::float8 AS f, 2.5::numeric AS d,"
            " now() AS ts FROM generate_series(1, 3) AS i"
        )
        boxed = await con.fetchrow("SELECT ARRAY[1, 2] AS arr, 'x' AS t")
        with_uuid = await con.fetchrow(
            "SELECT 1 AS i, '00000000-0000-0000-0000-000000000001'::uuid AS u"
        )
    finally:
        await con.close()
    assert len(plain) == 3 and not any(gc.is_tracked(r) for r in plain)
    # A list is tracked; so is (for now) a uuid.UUID, a Python-level class.
    assert gc.is_tracked(boxed) == gc.is_tracked(boxed["arr"])
    assert gc.is_tracked(with_uuid) == gc.is_tracked(with_uuid["u"])


# --- reference counts -------------------------------------------------------------


def checkref(*objs):
    """Asserts the body does not change the refcounts of `objs` (a context manager)."""

    class Check:
        def __enter__(self):
            gc.collect()
            self.before = [sys.getrefcount(o) for o in objs]

        def __exit__(self, *exc):
            gc.collect()
            after = [sys.getrefcount(o) for o in objs]
            assert after == self.before, (objs, self.before, after)

    return Check()


def test_refcounts_create_and_destroy():
    elem, key, mapping = object(), "spam_key_" + str(id(object())), {}
    mapping[key] = 0
    with checkref(elem, key, mapping, MyRecord, SlotRecord, ferropg.Record):
        for cls in (None, MyRecord, SlotRecord):
            for _ in range(1000):
                r = _create_record(mapping, (elem,), cls=cls)
                del r
        del cls
        lst = [elem]
        for _ in range(100):
            r = _create_record(mapping, (lst,))  # tracked
            del r
        del lst


def test_refcounts_operations():
    elem, other = object(), Target()
    r = _create_record(R_AB, (elem, other))
    with checkref(elem, other, r):
        for _ in range(200):
            r[0], r[-1], r["a"], r.get("b"), r.get("zz", elem), r[:], r[::-1]
            tuple(r), list(r.items()), list(r.keys()), list(r.values())
            "a" in r, other in r, r == (elem, other), r != r, repr(r), str(r), len(r)
            it = iter(r)
            next(it)
            del it  # not exhausted: still holds r
            for bad in ("zz", 5, [1]):
                with pytest.raises((KeyError, IndexError)):
                    r[bad]


def test_refcount_of_failed_lookups():
    key, val = "spam", int("101010")
    with checkref(key, val):
        r = _create_record({key: val}, (0,))
        with pytest.raises(RuntimeError, match="invalid record descriptor"):
            r[key]
        del r


# --- subclasses ---------------------------------------------------------------------


def test_subclass_instances():
    r = _create_record(R_AB, (1, "x"), cls=MyRecord)
    assert type(r) is MyRecord and isinstance(r, ferropg.Record)
    assert r.a == 1 and r.b == "x" and r["b"] == "x" and r == (1, "x")
    assert repr(r) == "<MyRecord a=1 b='x'>" and str(r) == repr(r)
    with pytest.raises(AttributeError):
        r.nope  # noqa: B018
    r.extra = 5  # instances have a __dict__
    assert r.extra == 5 and r.__dict__ == {"extra": 5}
    s = _create_record(R_A, (1,), cls=SlotRecord)
    with pytest.raises(AttributeError):
        s.extra = 5


def test_subclass_cannot_be_instantiated_or_pickled():
    with pytest.raises(TypeError, match="cannot create 'ferropg.Record' instances"):
        ferropg.Record()
    with pytest.raises(TypeError, match="cannot create"):
        MyRecord()
    # record_class checks compare these with ferropg.Record's.
    assert MyRecord.__new__ is ferropg.Record.__new__
    assert MyRecord.__init__ is ferropg.Record.__init__
    r = _create_record(R_A, (1,), cls=MyRecord)
    for value in (r, _create_record(R_A, (1,))):
        with pytest.raises(TypeError, match="cannot pickle"):
            pickle.dumps(value)
        with pytest.raises(TypeError):
            copy.copy(value)


def test_bad_record_class():
    with pytest.raises(TypeError, match="subclass"):
        _create_record(R_A, (1,), cls=tuple)
    with pytest.raises(TypeError, match="nonempty __slots__"):

        class Bad(ferropg.Record):
            __slots__ = ("x",)


def test_type_identity():
    assert _native.Record is ferropg.Record
    assert ferropg.Record.__module__ == "ferropg" and ferropg.Record.__name__ == "Record"
    with pytest.raises(TypeError):
        ferropg.Record.foo = 1  # immutable type


# --- freelist -----------------------------------------------------------------------


def test_freelist_fills_and_is_reused():
    gc.collect()
    before = _native._record_freelist_counts()
    assert len(before) == 20
    batch = [rec(*range(3)) for _ in range(3000)]
    del batch
    full = _native._record_freelist_counts()
    assert full[3] == 2000  # capped per size
    batch = [rec(*range(3)) for _ in range(500)]
    assert _native._record_freelist_counts()[3] == 1500  # taken back
    del batch
    # Sizes from 20 up, and subclass instances, never go to the freelist.
    counts = _native._record_freelist_counts()
    big = [rec(*range(25)) for _ in range(10)] + [rec(1, cls=SlotRecord) for _ in range(10)]
    del big
    assert _native._record_freelist_counts() == counts


def test_freelist_many_sizes():
    for _ in range(2000):
        for n in range(0, 24):
            r = rec(*range(n))
            assert len(r) == n and tuple(r) == tuple(range(n))
    assert all(c <= 2000 for c in _native._record_freelist_counts())


def test_freelist_per_thread():
    seen = {}

    def work():
        batch = [rec(1, 2) for _ in range(100)]
        del batch
        seen["counts"] = _native._record_freelist_counts()

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen["counts"][2] == 100
    # The thread's spare records were handed over at exit and are freed by the next
    # allocation that misses its freelist; nothing to see but no crash.
    for _ in range(3):
        rec(*range(19))


def test_records_cross_threads():
    made = [rec(i, str(i)) for i in range(1000)]

    def drop():
        made.clear()

    t = threading.Thread(target=drop)
    t.start()
    t.join()
    assert made == []


# --- deep nesting and cycles ---------------------------------------------------------


def test_deep_nesting_does_not_overflow_the_stack():
    x = rec()
    for _ in range(500_000):
        x = rec(x)
    del x
    y = rec()
    for _ in range(100_000):
        y = rec([y], cls=MyRecord)
    del y
    gc.collect()


def test_cycles_are_collected():
    target = Target()
    ref = weakref.ref(target)
    box = [target]
    r = rec(box)
    box.append(r)
    del r, box, target
    gc.collect()
    assert ref() is None

    target = Target()
    ref = weakref.ref(target)
    m = rec(target, cls=MyRecord)
    m.me = m
    del m, target
    gc.collect()
    assert ref() is None


def test_repr_of_a_cycle():
    box = []
    r = _create_record(R_A, (box,))
    box.append(r)
    assert repr(r) == "<Record a=[<Record ...>]>"


def test_hash_is_the_tuple_hash():
    for values in [(), (1,), (1, "x", None), (-1, 2.5, b"z"), (uuid.UUID(int=5),)]:
        assert hash(rec(*values)) == hash(values)
    with pytest.raises(TypeError, match="unhashable"):
        hash(rec([1]))


# --- microbenchmark (printed, not asserted) --------------------------------------------


async def test_microbench_1m_rows(dsn, capsys):
    n = 1_000_000

    con = await ferropg.connect(dsn)
    try:
        await con.fetch("SELECT i, i + 1 FROM generate_series(1, 10) AS i")  # warm
        t0 = time.perf_counter()
        rows = await con.fetch("SELECT i, i::int8 + 1, 'x' FROM generate_series(1, $1) AS i", n)
        t1 = time.perf_counter()
        gc.collect()
        t2 = time.perf_counter()
        tuples = [tuple(r) for r in rows]
        t3 = time.perf_counter()
        assert len(rows) == n and not gc.is_tracked(rows[0])
        del rows, tuples
        fetch, to_tuples, collect = t1 - t0, t3 - t2, t2 - t1
    finally:
        await con.close()
    desc = {"a": 0, "b": 1, "c": 2}
    t0 = time.perf_counter()
    for i in range(200_000):
        _create_record(desc, (i, i, "x"))
    t1 = time.perf_counter()
    with capsys.disabled():
        print(
            f"\n[record microbench] fetch {n} rows x 3 cols: {fetch * 1e9 / n:.0f} ns/row;"
            f" tuple(r): {to_tuples * 1e9 / n:.0f} ns/row;"
            f" gc.collect() with {n} Records alive: {collect * 1e3:.1f} ms;"
            f" _create_record: {(t1 - t0) * 1e9 / 200_000:.0f} ns/call"
        )


async def test_array_values_are_tracked_again_on_the_way_out(dsn):
    # Decoded arrays sit untracked in their (tracked) row until handed out: every way
    # of getting at a value must give an ordinary, tracked list.
    con = await ferropg.connect(dsn)
    try:
        sql = "SELECT ARRAY[1, 2] AS a, ARRAY[[3], [4]] AS b, 5 AS c FROM generate_series(1, 8)"
        rows = await con.fetch(sql)
        assert all(gc.is_tracked(r) for r in rows)
        getters = [
            lambda r: r[0],
            lambda r: r["a"],
            lambda r: r.get("a"),
            lambda r: r[0:1][0],
            lambda r: next(iter(r)),
            lambda r: next(iter(r.values())),
            lambda r: next(iter(r.items()))[1],
            lambda r: dict(r)["a"],
        ]
        for row, get in zip(rows, getters, strict=True):
            value = get(row)
            assert value == [1, 2]
            assert gc.is_tracked(value)
        nested = rows[0]["b"]
        assert gc.is_tracked(nested) and all(gc.is_tracked(x) for x in nested)
    finally:
        await con.close()


async def test_cycle_through_a_decoded_array_is_collected(dsn):
    collected = []

    class Marker:
        def __del__(self):
            collected.append(True)

    con = await ferropg.connect(dsn)
    try:
        rows = await con.fetch("SELECT ARRAY[1, 2] AS a")
        arr = rows[0]["a"]
        arr.append(rows[0])  # row -> list -> row
        arr.append(Marker())
        del rows, arr
        # The event loop may still hold the finished future (and so the result)
        # for a moment: let it let go first.
        for _ in range(3):
            await asyncio.sleep(0)
        gc.collect()
        assert collected == [True]
        # Compared against a user object: the list it sees is tracked too.
        seen = []

        class Spy:
            def __eq__(self, other):
                seen.append(other)
                return False

        row = await con.fetchrow("SELECT ARRAY[7] AS a")
        assert row != (Spy(),)
        assert seen and all(gc.is_tracked(x) for x in seen if isinstance(x, list))
    finally:
        await con.close()

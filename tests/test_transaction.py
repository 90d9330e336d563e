"""Connection.transaction(): BEGIN/COMMIT/ROLLBACK, savepoints, options, misuse errors."""

import re

import pytest

import ferropg
from ferropg import exceptions
from ferropg.transaction import Transaction, TransactionState


async def _table(con, name):
    await con.execute(f"DROP TABLE IF EXISTS {name}; CREATE TABLE {name}(a int)")


async def _values(con, name):
    return [r[0] for r in await con.fetch(f"SELECT a FROM {name} ORDER BY a")]


async def test_commit_is_visible_elsewhere_only_after_commit(dsn):
    con = await ferropg.connect(dsn)
    other = await ferropg.connect(dsn)
    try:
        await _table(con, "xact_commit")
        tr = con.transaction()
        assert isinstance(tr, Transaction) and tr._state is TransactionState.NEW
        assert con._top_xact is None and not con.is_in_transaction()
        await tr.start()
        assert con._top_xact is tr and con.is_in_transaction()
        assert con._protocol.transaction_status == "T"
        await con.execute("INSERT INTO xact_commit VALUES (1)")
        assert await _values(other, "xact_commit") == []
        await tr.commit()
        assert con._top_xact is None and not con.is_in_transaction()
        assert tr._state is TransactionState.COMMITTED
        assert await _values(other, "xact_commit") == [1]

        async with con.transaction():
            await con.execute("INSERT INTO xact_commit VALUES (2)")
        assert await _values(other, "xact_commit") == [1, 2]
    finally:
        await con.execute("DROP TABLE IF EXISTS xact_commit")
        await con.close()
        await other.close()


async def test_rollback_manual_and_on_exception(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _table(con, "xact_rb")
        tr = con.transaction()
        await tr.start()
        await con.execute("INSERT INTO xact_rb VALUES (1)")
        await tr.rollback()
        assert tr._state is TransactionState.ROLLEDBACK
        assert await _values(con, "xact_rb") == []

        tr = con.transaction()
        with pytest.raises(ZeroDivisionError):
            async with tr as entered:
                # __aenter__ returns None so commit()/rollback() are out of reach.
                assert entered is None
                assert tr._managed
                await con.execute("INSERT INTO xact_rb VALUES (2)")
                raise ZeroDivisionError
        assert not tr._managed
        assert tr._state is TransactionState.ROLLEDBACK
        assert con._top_xact is None and not con.is_in_transaction()
        assert await _values(con, "xact_rb") == []

        # A server error leaves the block in the failed ('E') state; exiting still
        # rolls back and the server error propagates.
        with pytest.raises(exceptions.DivisionByZeroError):
            async with con.transaction():
                await con.execute("INSERT INTO xact_rb VALUES (3)")
                await con.execute("SELECT 1 / 0")
        assert not con.is_in_transaction()
        assert await _values(con, "xact_rb") == []
    finally:
        await con.execute("DROP TABLE IF EXISTS xact_rb")
        await con.close()


async def test_nested_savepoints(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _table(con, "xact_nest")
        outer = con.transaction()
        async with outer:
            await con.execute("INSERT INTO xact_nest VALUES (1)")
            inner1 = con.transaction()
            async with inner1:
                assert con._top_xact is outer
                await con.execute("INSERT INTO xact_nest VALUES (2)")
                inner2 = con.transaction()
                with pytest.raises(ZeroDivisionError):
                    async with inner2:
                        await con.execute("INSERT INTO xact_nest VALUES (3)")
                        raise ZeroDivisionError
                assert await _values(con, "xact_nest") == [1, 2]
            # A savepoint rolled back after a server error makes the block usable again.
            with pytest.raises(exceptions.UndefinedTableError):
                async with con.transaction():
                    await con.execute("INSERT INTO xact_nest VALUES (4)")
                    await con.execute("SELECT * FROM no_such_table")
            assert con._protocol.transaction_status == "T"
            await con.execute("INSERT INTO xact_nest VALUES (5)")
            assert con._top_xact is outer
        assert con._top_xact is None

        assert inner1._nested and inner2._nested and not outer._nested
        assert outer._id is None
        assert re.fullmatch(r"__ferropg_savepoint_[0-9a-f_]+__", inner1._id)
        assert inner1._id != inner2._id
        assert inner1._state is TransactionState.COMMITTED
        assert inner2._state is TransactionState.ROLLEDBACK
        assert await _values(con, "xact_nest") == [1, 2, 5]

        # Manual savepoints, rolled back while the outer block commits.
        tr = con.transaction()
        await tr.start()
        sp = con.transaction()
        await sp.start()
        await con.execute("INSERT INTO xact_nest VALUES (6)")
        await sp.rollback()
        await con.execute("INSERT INTO xact_nest VALUES (7)")
        await tr.commit()
        assert await _values(con, "xact_nest") == [1, 2, 5, 7]

        # The whole thing rolled back from the outside undoes committed savepoints.
        with pytest.raises(RuntimeError):
            async with con.transaction():
                async with con.transaction():
                    await con.execute("INSERT INTO xact_nest VALUES (8)")
                raise RuntimeError
        assert await _values(con, "xact_nest") == [1, 2, 5, 7]
    finally:
        await con.execute("DROP TABLE IF EXISTS xact_nest")
        await con.close()


LEVELS = {
    "read_committed": "read committed",
    "read_uncommitted": "read uncommitted",
    "repeatable_read": "repeatable read",
    "serializable": "serializable",
}


async def test_isolation_levels(dsn):
    con = await ferropg.connect(dsn)
    try:
        for level, shown in LEVELS.items():
            async with con.transaction(isolation=level):
                assert await con.fetchval("SHOW transaction_isolation") == shown
        # None leaves the session's default in force.
        for session_level in ("repeatable read", "serializable"):
            await con.execute(
                f"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL {session_level}"
            )
            async with con.transaction():
                assert await con.fetchval("SHOW transaction_isolation") == session_level
            async with con.transaction(isolation="read_committed"):
                assert await con.fetchval("SHOW transaction_isolation") == "read committed"
        with pytest.raises(ValueError, match="isolation is expected to be either of"):
            con.transaction(isolation="snapshot")
    finally:
        await con.close()


async def test_nested_isolation_rules(dsn):
    con = await ferropg.connect(dsn)
    try:
        async with con.transaction(isolation="repeatable_read"):
            async with con.transaction(isolation="repeatable_read"):
                pass
            async with con.transaction():  # None: inherits, always allowed
                pass
            with pytest.raises(
                exceptions.InterfaceError,
                match=re.escape(
                    "nested transaction has a different isolation level: "
                    "current 'serializable' != outer 'repeatable_read'"
                ),
            ):
                async with con.transaction(isolation="serializable"):
                    pass
            # The refusal left the outer block intact.
            assert con._protocol.transaction_status == "T"
            # asyncpg does not check readonly/deferrable of a savepoint: neither do we.
            async with con.transaction(readonly=True, deferrable=True):
                await con.execute("CREATE TEMP TABLE nested_rw(a int)")

        # The outer block took the session default: the server is asked what it is.
        await con.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        async with con.transaction():
            async with con.transaction(isolation="serializable"):
                pass
            with pytest.raises(exceptions.InterfaceError, match="!= outer 'serializable'"):
                async with con.transaction(isolation="read_committed"):
                    pass
    finally:
        await con.close()


async def test_readonly_and_deferrable(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _table(con, "xact_ro")
        with pytest.raises(exceptions.ReadOnlySQLTransactionError):
            async with con.transaction(readonly=True):
                assert await con.fetchval("SHOW transaction_read_only") == "on"
                await con.execute("INSERT INTO xact_ro VALUES (1)")
        assert not con.is_in_transaction()
        async with con.transaction(isolation="serializable", readonly=True, deferrable=True):
            assert await con.fetchval("SHOW transaction_deferrable") == "on"
            assert await con.fetchval("SHOW transaction_read_only") == "on"
        async with con.transaction():
            assert await con.fetchval("SHOW transaction_read_only") == "off"
            assert await con.fetchval("SHOW transaction_deferrable") == "off"
            await con.execute("INSERT INTO xact_ro VALUES (1)")
        assert await _values(con, "xact_ro") == [1]
    finally:
        await con.execute("DROP TABLE IF EXISTS xact_ro")
        await con.close()


async def test_interface_errors(dsn):
    con = await ferropg.connect(dsn)
    IE = exceptions.InterfaceError
    try:
        tr = con.transaction(readonly=True, isolation="serializable")
        with pytest.raises(IE, match="^cannot start; the transaction is already started$"):
            async with tr:
                await tr.start()
        assert repr(tr).startswith("<ferropg.Transaction state:rolledback serializable readonly 0x")
        with pytest.raises(IE, match="^cannot start; the transaction is already rolled back$"):
            async with tr:
                pass
        # A refused __aenter__ does not leave the object stuck in "managed".
        assert not tr._managed
        assert con._top_xact is None and not con.is_in_transaction()

        tr = con.transaction()
        with pytest.raises(IE, match="^cannot commit; the transaction is not yet started$"):
            await tr.commit()
        with pytest.raises(IE, match="^cannot rollback; the transaction is not yet started$"):
            await tr.rollback()
        await tr.start()
        await tr.commit()
        for op, word in ((tr.commit, "commit"), (tr.rollback, "rollback"), (tr.start, "start")):
            with pytest.raises(IE, match=f"^cannot {word}; the transaction is already committed$"):
                await op()

        tr = con.transaction()
        with pytest.raises(IE, match="^cannot manually commit from within an `async with` block$"):
            async with tr:
                await tr.commit()
        assert tr._state is TransactionState.ROLLEDBACK
        tr = con.transaction()
        with pytest.raises(
            IE, match="^cannot manually rollback from within an `async with` block$"
        ):
            async with tr:
                await tr.rollback()
        tr = con.transaction()
        with pytest.raises(IE, match="^cannot enter context: already in an `async with` block$"):
            async with tr:
                async with tr:
                    pass
        assert con._top_xact is None and not con.is_in_transaction()

        # A savepoint whose transaction vanished underneath: the RELEASE fails on the
        # server and the object is in the error state afterwards.
        top = con.transaction()
        await top.start()
        sp = con.transaction()
        await sp.start()
        await con.execute("ROLLBACK")
        with pytest.raises(exceptions.PostgresError):
            await sp.commit()
        assert sp._state is TransactionState.FAILED
        assert repr(sp).startswith("<ferropg.Transaction state:failed 0x")
        with pytest.raises(IE, match="^cannot commit; the transaction is in error state$"):
            await sp.commit()
        con._top_xact = None

        # Connection.transaction() inside a BEGIN the user sent.
        await con.execute("BEGIN")
        tr = con.transaction()
        with pytest.raises(
            IE,
            match="^cannot use Connection.transaction\\(\\) in a manually started transaction$",
        ):
            await tr.start()
        assert con._top_xact is None
        await con.execute("ROLLBACK")

        tr = con.transaction(deferrable=True)
        assert repr(tr).startswith("<ferropg.Transaction state:new deferrable 0x")
    finally:
        await con.close()

    with pytest.raises(
        IE, match="^cannot call Transaction.start\\(\\): the underlying connection is closed$"
    ):
        await tr.start()


def test_repr_of_subclass_names_its_module():
    class MyTransaction(Transaction):
        pass

    class FakeConnection:
        pass

    tr = MyTransaction(FakeConnection(), "read_committed", False, False)
    assert repr(tr).startswith(f"<{__name__}.MyTransaction state:new read_committed 0x")

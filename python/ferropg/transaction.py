"""Transactions and savepoints: what ``Connection.transaction()`` returns.

A top-level transaction is ``BEGIN`` ... ``COMMIT``/``ROLLBACK``; a transaction started
while another one (``connection._top_xact``) is open is a savepoint inside it.  States,
error messages and the ``async with`` rules follow asyncpg 0.32.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
from typing import Any

from . import exceptions
from ._released import guard_released, release_counter

__all__ = ("ISOLATION_LEVELS", "Transaction", "TransactionState")


class TransactionState(enum.Enum):
    """Where a :class:`Transaction` is in its life."""

    NEW = 0
    STARTED = 1
    COMMITTED = 2
    ROLLEDBACK = 3
    FAILED = 4


#: The accepted ``isolation`` arguments (``None`` means the session's default).
ISOLATION_LEVELS = frozenset(
    {"read_committed", "read_uncommitted", "serializable", "repeatable_read"}
)

# ``SHOW transaction_isolation`` spelling -> argument spelling, to compare a nested
# block's level with an outer block that took the session default.
ISOLATION_LEVELS_BY_VALUE = {level.replace("_", " "): level for level in ISOLATION_LEVELS}

#: What ``BEGIN`` says for each ``isolation`` argument: the argument's words, upper-cased.
_ISOLATION_CLAUSE = {
    level: "ISOLATION LEVEL " + level.replace("_", " ").upper() for level in ISOLATION_LEVELS
}

#: Why an operation is refused in a state other than the one it needs (NEW to start,
#: STARTED to commit or roll back); the message reads ``cannot <operation>; <reason>``.
_REFUSAL = {
    TransactionState.NEW: "the transaction is not yet started",
    TransactionState.STARTED: "the transaction is already started",
    TransactionState.COMMITTED: "the transaction is already committed",
    TransactionState.ROLLEDBACK: "the transaction is already rolled back",
    TransactionState.FAILED: "the transaction is in error state",
}

# Used when the connection has no ``_get_unique_id``; process-wide either way, so names
# never repeat even across connections that share a server session through a pooler.
_savepoint_ids = itertools.count(1)


def _savepoint_name() -> str:
    return f"__ferropg_savepoint_{next(_savepoint_ids):x}__"


class Transaction:
    """A transaction block, or a savepoint when another block is already open.

    Made by :meth:`Connection.transaction() <ferropg.Connection.transaction>`.  Use it as
    ``async with con.transaction(): ...`` (commit on success, rollback on an exception), or
    call :meth:`start`, then :meth:`commit` or :meth:`rollback`.
    """

    __slots__ = (
        "_connection",
        "_release_ctr",
        "_isolation",
        "_readonly",
        "_deferrable",
        "_state",
        "_nested",
        "_id",
        "_managed",
    )

    def __init__(
        self,
        connection: Any,
        isolation: str | None = None,
        readonly: bool = False,
        deferrable: bool = False,
    ) -> None:
        if isolation and isolation not in ISOLATION_LEVELS:
            raise ValueError(
                f"isolation is expected to be either of {set(ISOLATION_LEVELS)}, got {isolation!r}"
            )
        self._connection = connection
        # A pool bumps this counter when the connection goes back, which makes every
        # object handed out before that unusable.
        self._release_ctr = release_counter(connection)
        self._isolation = isolation
        self._readonly = readonly
        self._deferrable = deferrable
        self._state = TransactionState.NEW
        self._nested = False
        self._id: str | None = None
        self._managed = False

    # ------------------------------------------------------------ async with

    async def __aenter__(self) -> None:
        # Returning None, as asyncpg does, keeps commit()/rollback() out of reach
        # inside the block, where they would break the block's own exit.
        if self._managed:
            raise exceptions.InterfaceError(
                "cannot enter context: already in an `async with` block"
            )
        self._managed = True
        try:
            await self.start()
        except BaseException:
            # __aexit__ will not run, so nothing else would clear the flag.
            self._managed = False
            raise

    async def __aexit__(self, extype: Any, ex: Any, tb: Any) -> None:
        try:
            self._check_conn_validity("__aexit__")
        except exceptions.InterfaceError:
            if extype is GeneratorExit:
                # An async generator abandoned while its pooled connection is being
                # released: the pool's release rolls back for us.
                return
            raise
        # A block left by an exception is rolled back, one left normally committed.
        try:
            await self._end(commit=extype is None)
        finally:
            self._managed = False

    # --------------------------------------------------------------- public

    @guard_released("Transaction")
    async def start(self) -> None:
        """Sends ``BEGIN`` (``SAVEPOINT`` when another block is open) and marks the block
        started."""
        self._check_conn_validity("start")
        self._require(TransactionState.NEW, "start")

        con = self._connection
        top = con._top_xact
        if top is None:
            ready = getattr(con, "_ready_for_operation", None)
            if ready is not None:
                # The transaction status is the server's after the last operation: an
                # abandoned one (and the roll-back of its BEGIN) must end first.
                await ready()
                top = con._top_xact
        if top is None:
            if con._protocol.is_in_transaction():
                raise exceptions.InterfaceError(
                    "cannot use Connection.transaction() in a manually started transaction"
                )
            con._top_xact = self
        else:
            if self._isolation:
                outer = top._isolation
                if outer is None:
                    # The outer block took the session default: ask what it got.
                    shown = await con.fetchval("SHOW transaction_isolation;")
                    outer = ISOLATION_LEVELS_BY_VALUE[shown]
                if self._isolation != outer:
                    raise exceptions.InterfaceError(
                        "nested transaction has a different isolation level: "
                        f"current {self._isolation!r} != outer {outer!r}"
                    )
            self._nested = True

        if self._nested:
            unique_id = getattr(con, "_get_unique_id", None)
            self._id = unique_id("savepoint") if unique_id is not None else _savepoint_name()
            query = f"SAVEPOINT {self._id};"
        else:
            query = self._begin_statement()

        try:
            await con.execute(query)
        except BaseException as e:
            self._state = TransactionState.FAILED
            if con._top_xact is self:
                # No BEGIN took effect that a later block could nest in.
                con._top_xact = None
            if not self._nested and isinstance(e, (asyncio.CancelledError, TimeoutError)):
                # The BEGIN may still run after its caller gave up: the connection rolls
                # back what it starts before anything else runs. (A savepoint left so is
                # ended by its outer block.)
                end = getattr(con, "_end_abandoned_begin", None)
                if end is not None:
                    end()
            raise
        self._state = TransactionState.STARTED

    @guard_released("Transaction")
    async def commit(self) -> None:
        """Keeps the block's work: ``COMMIT``, or ``RELEASE SAVEPOINT`` when nested."""
        await self._end_by_hand("commit")

    @guard_released("Transaction")
    async def rollback(self) -> None:
        """Undoes the block's work: ``ROLLBACK``, or ``ROLLBACK TO`` its savepoint when
        nested."""
        await self._end_by_hand("rollback")

    async def _end_by_hand(self, opname: str) -> None:
        self._check_conn_validity(opname)
        if self._managed:
            # The ``async with`` block ends the transaction itself on its way out.
            raise exceptions.InterfaceError(
                f"cannot manually {opname} from within an `async with` block"
            )
        await self._end(commit=opname == "commit")

    # -------------------------------------------------------------- helpers

    def _begin_statement(self) -> str:
        words = ["BEGIN"]
        if self._isolation:
            words.append(_ISOLATION_CLAUSE[self._isolation])
        if self._readonly:
            words.append("READ ONLY")
        if self._deferrable:
            words.append("DEFERRABLE")
        return " ".join(words) + ";"

    async def _end(self, commit: bool) -> None:
        """COMMIT or ROLLBACK the block (RELEASE or ROLLBACK TO its savepoint)."""
        self._require(TransactionState.STARTED, "commit" if commit else "rollback")
        if not self._nested:
            query = "COMMIT;" if commit else "ROLLBACK;"
        elif commit:
            query = f"RELEASE SAVEPOINT {self._id};"
        else:
            query = f"ROLLBACK TO {self._id};"
        con = self._connection
        # Cleared first: whatever the server says, this block no longer hosts savepoints.
        if con._top_xact is self:
            con._top_xact = None
        try:
            await con.execute(query)
        except BaseException:
            self._state = TransactionState.FAILED
            raise
        self._state = TransactionState.COMMITTED if commit else TransactionState.ROLLEDBACK

    def _check_conn_validity(self, meth_name: str) -> None:
        con = self._connection
        if release_counter(con) != self._release_ctr:
            raise exceptions.InterfaceError(
                f"cannot call Transaction.{meth_name}(): "
                "the underlying connection has been released back to the pool"
            )
        if con.is_closed():
            raise exceptions.InterfaceError(
                f"cannot call Transaction.{meth_name}(): the underlying connection is closed"
            )

    def _require(self, needed: TransactionState, opname: str) -> None:
        if self._state is not needed:
            raise exceptions.InterfaceError(f"cannot {opname}; {_REFUSAL[self._state]}")

    def __repr__(self) -> str:
        flags = [
            f"state:{self._state.name.lower()}",
            self._isolation,
            "readonly" if self._readonly else None,
            "deferrable" if self._deferrable else None,
        ]
        cls = type(self)
        # Subclasses defined inside the package are shown under its top-level name.
        home = cls.__module__
        if home.split(".", 1)[0] == "ferropg":
            home = "ferropg"
        shown = " ".join(flag for flag in flags if flag is not None)
        return f"<{home}.{cls.__name__} {shown} {id(self):#x}>"

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
ISOLATION_LEVELS_BY_VALUE = {
    "read committed": "read_committed",
    "read uncommitted": "read_uncommitted",
    "serializable": "serializable",
    "repeatable read": "repeatable_read",
}

_BEGIN_ISOLATION = {
    "read_committed": " ISOLATION LEVEL READ COMMITTED",
    "read_uncommitted": " ISOLATION LEVEL READ UNCOMMITTED",
    "repeatable_read": " ISOLATION LEVEL REPEATABLE READ",
    "serializable": " ISOLATION LEVEL SERIALIZABLE",
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
        try:
            if extype is not None:
                await self._rollback()
            else:
                await self._commit()
        finally:
            self._managed = False

    # --------------------------------------------------------------- public

    @guard_released("Transaction")
    async def start(self) -> None:
        """Enters the transaction or savepoint block."""
        self._check_conn_validity("start")
        self._check_state_base("start")
        if self._state is TransactionState.STARTED:
            raise exceptions.InterfaceError("cannot start; the transaction is already started")

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
            query = "BEGIN"
            if self._isolation:
                query += _BEGIN_ISOLATION[self._isolation]
            if self._readonly:
                query += " READ ONLY"
            if self._deferrable:
                query += " DEFERRABLE"
            query += ";"

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
        """Leaves the block and commits it (releases the savepoint when nested)."""
        self._check_conn_validity("commit")
        if self._managed:
            raise exceptions.InterfaceError(
                "cannot manually commit from within an `async with` block"
            )
        await self._commit()

    @guard_released("Transaction")
    async def rollback(self) -> None:
        """Leaves the block and rolls it back (to the savepoint when nested)."""
        self._check_conn_validity("rollback")
        if self._managed:
            raise exceptions.InterfaceError(
                "cannot manually rollback from within an `async with` block"
            )
        await self._rollback()

    # -------------------------------------------------------------- helpers

    async def _commit(self) -> None:
        self._check_state("commit")
        query = f"RELEASE SAVEPOINT {self._id};" if self._nested else "COMMIT;"
        await self._finish(query, TransactionState.COMMITTED)

    async def _rollback(self) -> None:
        self._check_state("rollback")
        query = f"ROLLBACK TO {self._id};" if self._nested else "ROLLBACK;"
        await self._finish(query, TransactionState.ROLLEDBACK)

    async def _finish(self, query: str, state: TransactionState) -> None:
        con = self._connection
        # Cleared first: whatever the server says, this block no longer hosts savepoints.
        if con._top_xact is self:
            con._top_xact = None
        try:
            await con.execute(query)
        except BaseException:
            self._state = TransactionState.FAILED
            raise
        self._state = state

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

    def _check_state_base(self, opname: str) -> None:
        state = self._state
        if state is TransactionState.COMMITTED:
            raise exceptions.InterfaceError(
                f"cannot {opname}; the transaction is already committed"
            )
        if state is TransactionState.ROLLEDBACK:
            raise exceptions.InterfaceError(
                f"cannot {opname}; the transaction is already rolled back"
            )
        if state is TransactionState.FAILED:
            raise exceptions.InterfaceError(f"cannot {opname}; the transaction is in error state")

    def _check_state(self, opname: str) -> None:
        if self._state is TransactionState.STARTED:
            return
        if self._state is TransactionState.NEW:
            raise exceptions.InterfaceError(f"cannot {opname}; the transaction is not yet started")
        self._check_state_base(opname)

    def __repr__(self) -> str:
        attrs = [f"state:{self._state.name.lower()}"]
        if self._isolation is not None:
            attrs.append(self._isolation)
        if self._readonly:
            attrs.append("readonly")
        if self._deferrable:
            attrs.append("deferrable")
        mod = type(self).__module__
        if mod == "ferropg" or mod.startswith("ferropg."):
            mod = "ferropg"
        return f"<{mod}.{type(self).__name__} {' '.join(attrs)} {id(self):#x}>"

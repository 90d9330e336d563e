"""The asyncio protocol of a connection: ``_native.CoreProtocol`` under asyncio's interface."""

import asyncio

from .. import _native
from .._codecs import BUILTIN_TYPE_NAME_MAP
from ._oid_map import BUILTIN_TYPE_OID_MAP

Record = _native.Record
_create_record = _native._create_record


class Protocol(_native.CoreProtocol, asyncio.Protocol):
    """One PostgreSQL connection's protocol, written in Rust, running on the loop thread.

    Subclassable from Python, with per-instance attributes.
    """

    def __init__(self, loop, *args, **kwargs):
        self._loop = loop
        self._lost_waiter = None
        self._gone = False
        self._connection_lost_hook = None

    def _closed_waiter(self) -> asyncio.Future:
        """A future resolved when the transport has gone away."""
        if self._lost_waiter is None:
            self._lost_waiter = self._loop.create_future()
            if self._gone:
                self._lost_waiter.set_result(None)
        return self._lost_waiter

    def _is_cancelling(self) -> bool:
        """True while an abandoned (timed out or cancelled) query awaits its end."""
        return not self.is_closed() and self.has_pending() and not self.is_busy()

    async def _drain_cancels(self) -> None:
        """Waits until every abandoned query has reached its ReadyForQuery."""
        await self.wait_idle()

    def connection_lost(self, exc):
        # The connection's clean-up (termination listeners) comes before the failed
        # operations' callers resume, as in asyncpg.
        hook = self._connection_lost_hook
        if hook is not None:
            hook()
        super().connection_lost(exc)
        self._gone = True
        # A connect() cancelled mid-startup no longer awaits this; don't let asyncio
        # report its outcome as never retrieved.
        ready = self.wait_ready()
        if ready.done() and not ready.cancelled():
            ready.exception()
        waiter = self._lost_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


__all__ = ("BUILTIN_TYPE_NAME_MAP", "BUILTIN_TYPE_OID_MAP", "Protocol", "Record", "_create_record")

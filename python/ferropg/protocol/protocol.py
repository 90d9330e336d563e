"""The asyncio protocol of a connection: ``_native.CoreProtocol`` under asyncio's interface."""

import asyncio

from .. import _native

Record = _native.Record
_create_record = _native._create_record


class Protocol(_native.CoreProtocol, asyncio.Protocol):
    """One PostgreSQL connection's protocol, written in Rust, running on the loop thread.

    Subclassable from Python, with per-instance attributes.
    """

    def __init__(self, loop, *args, **kwargs):
        self._loop = loop
        self._lost_waiter = None

    def _closed_waiter(self) -> asyncio.Future:
        """A future resolved when the transport has gone away."""
        if self._lost_waiter is None:
            self._lost_waiter = self._loop.create_future()
            if self.is_closed() and self._transport_gone():
                self._lost_waiter.set_result(None)
        return self._lost_waiter

    def _transport_gone(self) -> bool:
        return getattr(self, "_gone", False)

    def connection_lost(self, exc):
        super().connection_lost(exc)
        self._gone = True
        waiter = self._lost_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


__all__ = ("Protocol", "Record", "_create_record")

"""Running the asyncio face's code from blocking calls.

A blocking connection owns an event loop of its own, in whatever thread calls it, and an
asyncio :class:`~ferropg.Connection` on that loop. Each blocking call runs the async
method to completion on that loop, so every rule of the async face (statement cache,
retries, timeouts, cancellation, TLS, listeners) applies unchanged: there is one copy
of each, in the async face and the core.

The queries that need nothing of the loop (a cached statement, no timeout, nothing else
under way) skip it: the protocol writes the request at once, and :meth:`Runner.pump`
has the extension read the socket and hand the bytes to the protocol until the result
is in. It waits with the GIL released, so other threads run meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Coroutine, Iterator
from typing import Any, TypeVar

from .. import exceptions

__all__ = ("Runner",)

T = TypeVar("T")


class Runner:
    """The loop a blocking connection runs on, and the guard that keeps two threads
    from using it at once."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._busy = threading.Lock()
        self._fd = -1
        self._protocol: Any = None

    def attach(self, protocol: Any, transport: Any) -> None:
        """Reads for the fast path go straight to the socket of ``transport`` when it is
        a plain one (TLS keeps the loop's transport, which holds the decrypted bytes)."""
        self._protocol = protocol
        sock = transport.get_extra_info("socket")
        if sock is None or transport.get_extra_info("sslcontext") is not None:
            return
        self._fd = sock.fileno()

    def enter(self) -> None:
        """Claims the connection for this thread; another thread's call under way is an
        :class:`~ferropg.exceptions.InterfaceError` (``threadsafety`` is 1)."""
        if not self._busy.acquire(blocking=False):
            raise exceptions.InterfaceError(
                "cannot use the connection from two threads at once: another call is in "
                "progress (give each thread its own connection, or use a pool)"
            )

    def leave(self) -> None:
        self._busy.release()

    def run(self, aw: Awaitable[T] | Coroutine[Any, Any, T]) -> T:
        """Runs ``aw`` on the loop to its end. An interrupt (Ctrl-C) cancels it as an
        asyncio cancellation would (the server is asked to cancel the query), then
        propagates."""
        loop = self.loop
        if loop.is_closed():
            if asyncio.iscoroutine(aw):
                aw.close()
            raise exceptions.InterfaceError("connection is closed")
        task = asyncio.ensure_future(aw, loop=loop)
        with _apart_from_outer_loop():
            try:
                return loop.run_until_complete(task)
            except BaseException:
                if not task.done():
                    task.cancel()
                    try:
                        loop.run_until_complete(task)
                    except BaseException:  # noqa: S110 - the first exception is the one to raise
                        pass
                raise

    def pump(self, fut: asyncio.Future) -> bool:
        """Feeds the protocol from the socket until ``fut`` is done; False when the fast
        path cannot go on (TLS, the end of the stream), and the loop must finish. The
        read loop is the extension's (``CoreProtocol.pump``): no Python runs between
        the read and the rows."""
        if self._fd < 0:
            return fut.done()
        if not self._protocol.pump(self._fd, fut):
            return False
        if self.loop._ready:  # type: ignore[attr-defined]
            # Callbacks the bytes scheduled (listeners, notices) run now, as they would
            # have inside the loop.
            self.loop.call_soon(self.loop.stop)
            with _apart_from_outer_loop():
                self.loop.run_forever()
        return True

    def close(self) -> None:
        """Closes the loop (after the connection's last call)."""
        if not self.loop.is_closed():
            with _apart_from_outer_loop():
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()


@contextlib.contextmanager
def _apart_from_outer_loop() -> Iterator[None]:
    """Lets the connection's loop run when this thread is inside another event loop's
    callback (a notebook, async code calling blocking code): that loop waits, as it
    would for any blocking call, while this one runs."""
    outer = asyncio.events._get_running_loop()
    if outer is None:
        yield
        return
    asyncio.events._set_running_loop(None)
    try:
        yield
    finally:
        asyncio.events._set_running_loop(outer)

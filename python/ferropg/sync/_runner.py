"""Running the asyncio face's code from blocking calls.

A blocking connection owns an event loop of its own, in whatever thread calls it, and an
asyncio :class:`~ferropg.Connection` on that loop. Each blocking call runs the async
method to completion on that loop, so every rule of the async face (statement cache,
retries, timeouts, cancellation, TLS, listeners) applies unchanged: there is one copy
of each, in the async face and the core.

The queries that need nothing of the loop (a cached statement, no timeout, nothing else
under way) skip it: the protocol writes the request to the socket at once, and its
``pump`` reads the socket and decodes the answer until the result is in (the caller
runs :meth:`Runner.finish` only if that could not complete the call). It waits with the
GIL released, so other threads run meanwhile.
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
        busy = threading.Lock()
        #: ``claim(False)`` takes the connection for this thread, False when another
        #: thread's call is under way (then :meth:`refuse`); ``release()`` gives it back.
        #: Bound methods of the lock: the hot path calls them with no Python in between.
        self.claim = busy.acquire
        self.release = busy.release
        self._protocol: Any = None
        #: Whether requests and reads go straight to the socket (not for TLS): then
        #: ``read_socket(fd, fut)`` is the protocol's ``pump``.
        self.direct = False
        self.fd = -1
        self.read_socket: Any = None

    def attach(self, protocol: Any, transport: Any) -> None:
        """Requests and reads go straight to the socket of ``transport`` when it is a
        plain one (TLS keeps the loop's transport, which holds the decrypted bytes)."""
        self._protocol = protocol
        sock = transport.get_extra_info("socket")
        if sock is None or transport.get_extra_info("sslcontext") is not None:
            return
        self.fd = sock.fileno()
        protocol.write_directly(self.fd)
        self.read_socket = protocol.pump
        self.direct = True

    @staticmethod
    def refuse() -> None:
        """A second thread's call while one is under way: ``threadsafety`` is 1."""
        raise exceptions.InterfaceError(
            "cannot use the connection from two threads at once: another call is in "
            "progress (give each thread its own connection, or use a pool)"
        )

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

    def finish(self, fut: Any) -> None:
        """Completes a fast-path call where reading the socket did not: runs the loop
        until ``fut`` is done (TLS, the stream's end, bytes the socket did not take at
        once), then the callbacks the bytes scheduled (listeners, notices), as they
        would have run inside the loop. ``fut`` is a loop future, or a waiter of the
        protocol's, done once nothing is pending."""
        if not fut.done():
            self.run(fut if isinstance(fut, asyncio.Future) else self._protocol.wait_idle())
        if self.loop._ready:  # type: ignore[attr-defined]
            self.loop.call_soon(self.loop.stop)
            with _apart_from_outer_loop():
                self.loop.run_forever()

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

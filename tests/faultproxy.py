"""A TCP fault proxy for the fault-injection tests: it stands between a client and a
real server and, on command, breaks the link the ways networks break.

It runs its own event loop in a thread, so it serves asyncio, uvloop and blocking
clients alike, and keeps forwarding while the client's loop is busy or stopped.

Faults (:meth:`FaultProxy.set_mode`, applied to open and new connections alike):

* ``pass``: forward both ways.
* ``blackhole``: stop forwarding, in both directions, without FIN or RST; new
  connections are accepted and then hear nothing, like a host gone off the network.
* ``bytewise``: forward, one byte per write.
* ``delay``: forward each chunk after ``delay`` seconds.

And once, on every open connection: :meth:`reset` cuts with RST, :meth:`half_close`
sends FIN to the client (and keeps reading what it sends).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from typing import Any

MODES = ("pass", "blackhole", "bytewise", "delay")


class _Link:
    """One proxied connection: the client's and the server's streams."""

    def __init__(self, client: tuple, server: tuple) -> None:
        self.client_reader, self.client_writer = client
        self.server_reader, self.server_writer = server

    def writers(self) -> tuple:
        return self.client_writer, self.server_writer


class FaultProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target`` (a ``(host, port)`` pair)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.mode = "pass"
        self.delay = 0.0
        self.port = 0
        self.accepted = 0
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: Any = None
        # Set when the mode leaves "blackhole": pumps wait on it instead of forwarding.
        self._flowing: asyncio.Event | None = None

    # ------------------------------------------------------------------ control

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def set_mode(self, mode: str, *, delay: float = 0.0) -> None:
        """Switches every link, open or new, to ``mode`` (see the module's docstring)."""
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}")

        def apply() -> None:
            self.mode = mode
            self.delay = delay
            if mode == "blackhole":
                self._flowing.clear()
            else:
                self._flowing.set()

        self._loop.call_soon_threadsafe(apply)
        self._call(asyncio.sleep(0))

    def reset(self) -> None:
        """Cuts every open link with RST, on both sides."""
        self._call(self._each_link(_abort_with_rst))

    def half_close(self) -> None:
        """Sends FIN to every open link's client; what the client sends still flows."""
        self._call(self._each_link(lambda link: _shutdown_write(link.client_writer)))

    def open_links(self) -> int:
        return len(self._links)

    # --------------------------------------------------------------- internals

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        self._server.close()
        for link in list(self._links):
            for w in link.writers():
                w.transport.abort()
        self._links.clear()

    async def _each_link(self, action: Any) -> None:
        for link in list(self._links):
            action(link)
        await asyncio.sleep(0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == "blackhole":
            # Accepted, then silence: the server is never reached.
            self._links.add(_Link((reader, writer), (None, writer)))
            await self._flowing.wait()
            return
        try:
            server = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        link = _Link((reader, writer), server)
        self._links.add(link)
        try:
            await asyncio.gather(
                self._pump(link.client_reader, link.server_writer),
                self._pump(link.server_reader, link.client_writer),
                return_exceptions=True,
            )
        finally:
            self._links.discard(link)
            for w in link.writers():
                w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            await self._flowing.wait()
            if self.mode == "delay" and self.delay:
                await asyncio.sleep(self.delay)
                await self._flowing.wait()
            if self.mode == "bytewise":
                for i in range(len(data)):
                    writer.write(data[i : i + 1])
                    await writer.drain()
            else:
                writer.write(data)
                await writer.drain()


def _abort_with_rst(link: _Link) -> None:
    for w in link.writers():
        sock = w.get_extra_info("socket")
        if sock is not None:
            # Linger 0: close() sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()


def _shutdown_write(writer: asyncio.StreamWriter) -> None:
    if writer.can_write_eof():
        writer.write_eof()

"""Bad bytes and broken links: a real server behind a proxy that corrupts or cuts its replies.

Whatever arrives, the caller gets a clear exception at once, never a hang, and the
connection reports itself closed afterwards.
"""

import asyncio

import pytest

import ferropg
from ferropg import exceptions


class Proxy:
    """Forwards TCP to the server; ``mode`` decides what happens to the server's replies."""

    def __init__(self, host, port):
        self.target = (host, port)
        self.mode = "pass"
        self.server = None
        self.writers = []

    async def start(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, client_reader, client_writer):
        if self.mode == "starting-up":
            # What a server that cannot take connections yet says to a StartupMessage.
            await client_reader.read(65536)
            fields = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0"
            client_writer.write(b"E" + (len(fields) + 4).to_bytes(4, "big") + fields)
            await client_writer.drain()
            client_writer.close()
            return
        server_reader, server_writer = await asyncio.open_connection(*self.target)
        self.writers += [client_writer, server_writer]

        async def upstream():
            while data := await client_reader.read(65536):
                server_writer.write(data)
            server_writer.close()

        async def downstream():
            while data := await server_reader.read(65536):
                if self.mode == "garbage":
                    data = b"\xfe\x00\x00\x00\x08garbage!"
                elif self.mode == "bad-length":
                    data = b"Z\x00\x00\x00\x01"
                elif self.mode == "trickle":
                    # Pieces of 1 to 7 bytes: messages split inside the header and the body.
                    pos = 0
                    while pos < len(data):
                        step = 1 + pos % 7
                        client_writer.write(data[pos : pos + step])
                        await client_writer.drain()
                        await asyncio.sleep(0)
                        pos += step
                    continue
                elif self.mode == "cut":
                    client_writer.write(data[: max(1, len(data) // 2)])
                    await client_writer.drain()
                    client_writer.close()
                    return
                client_writer.write(data)
                await client_writer.drain()
            client_writer.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)

    async def close(self):
        for w in self.writers:
            w.close()
        self.server.close()
        await self.server.wait_closed()


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("garbage", exceptions.ProtocolError),
        ("bad-length", exceptions.ProtocolError),
        ("cut", exceptions.ConnectionDoesNotExistError),
    ],
)
async def test_broken_replies_fail_fast(cluster, mode, error):
    kw = cluster.connection_kwargs()

    proxy = Proxy(kw["host"], kw["port"])
    port = await proxy.start()
    try:
        con = await ferropg.connect(host="127.0.0.1", port=port, user=kw["user"])
        assert await con.fetchval("SELECT 1") == 1
        proxy.mode = mode
        with pytest.raises(error):
            await asyncio.wait_for(con.fetch("SELECT generate_series(1, 1000)"), 10)
        await asyncio.sleep(0.05)
        assert con.is_closed()
        with pytest.raises(exceptions.InterfaceError, match="connection is closed"):
            await con.fetchval("SELECT 1")
    finally:
        await proxy.close()


async def test_replies_split_anywhere_decode_the_same(cluster):
    kw = cluster.connection_kwargs()
    query = (
        "SELECT i, repeat('x', i % 50) AS t, ('{\"k\": ' || i || '}')::jsonb AS j,"
        " ARRAY[i, -i] AS a FROM generate_series(1, 300) AS i"
    )

    direct = await ferropg.connect(**kw)
    expected = [tuple(r) for r in await direct.fetch(query)]
    await direct.close()
    proxy = Proxy(kw["host"], kw["port"])
    port = await proxy.start()
    proxy.mode = "trickle"
    try:
        con = await ferropg.connect(host="127.0.0.1", port=port, user=kw["user"])
        assert [tuple(r) for r in await con.fetch(query)] == expected
        assert await con.fetchval("SELECT $1::text", "after") == "after"
        await con.close()
    finally:
        await proxy.close()


async def test_cut_during_startup(cluster):
    kw = cluster.connection_kwargs()

    proxy = Proxy(kw["host"], kw["port"])
    port = await proxy.start()
    proxy.mode = "cut"
    try:
        with pytest.raises((exceptions.ConnectionDoesNotExistError, ConnectionError)):
            await asyncio.wait_for(
                ferropg.connect(host="127.0.0.1", port=port, user=kw["user"]), 10
            )
    finally:
        await proxy.close()


async def test_server_starting_up_moves_on_to_the_next_host(cluster):
    kw = cluster.connection_kwargs()

    proxy = Proxy(kw["host"], kw["port"])
    port = await proxy.start()
    proxy.mode = "starting-up"
    try:
        con = await ferropg.connect(
            host=["127.0.0.1", kw["host"]], port=[port, kw["port"]], user=kw["user"],
            ssl="disable",
        )  # fmt: skip
        assert await con.fetchval("SELECT 1") == 1
        await con.close()
        # With no other host, the server's own error.
        with pytest.raises(exceptions.CannotConnectNowError):
            await ferropg.connect(host="127.0.0.1", port=port, user=kw["user"], ssl="disable")
    finally:
        await proxy.close()

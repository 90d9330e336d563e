"""A minimal connection pool: ``create_pool()``, ``Pool.acquire()`` and ``release()``.

The full pool (setup/init/reset hooks, lifetimes, min_size maintenance) comes later;
this one hands out connections from a queue and opens new ones up to ``max_size``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from . import connection as _connection
from . import exceptions

__all__ = ("Pool", "create_pool")


class Pool:
    """A set of connections shared by tasks."""

    def __init__(self, *connect_args: Any, min_size: int = 10, max_size: int = 10, **kwargs: Any):
        if max_size <= 0:
            raise ValueError("max_size is expected to be greater than zero")
        if min_size < 0 or min_size > max_size:
            raise ValueError("min_size is expected to be between 0 and max_size")
        self._connect_args = connect_args
        self._connect_kwargs = kwargs
        self._min_size = min_size
        self._max_size = max_size
        self._idle: asyncio.LifoQueue | None = None
        self._all: set = set()
        self._opening = 0
        self._closed = False
        self._initialized = False

    async def _async_init(self) -> Pool:
        self._idle = asyncio.LifoQueue()
        for _ in range(self._min_size):
            con = await self._open()
            self._idle.put_nowait(con)
        self._initialized = True
        return self

    def __await__(self):
        return self._async_init().__await__()

    async def _open(self):
        self._opening += 1
        try:
            con = await _connection.connect(*self._connect_args, **self._connect_kwargs)
        finally:
            self._opening -= 1
        self._all.add(con)
        return con

    async def acquire(self, *, timeout: float | None = None):
        """Takes a connection, opening one when none is idle and the pool has room."""
        if self._closed:
            raise exceptions.InterfaceError("pool is closed")
        assert self._idle is not None

        async def take():
            while True:
                if not self._idle.empty():
                    con = self._idle.get_nowait()
                    if con.is_closed():
                        self._all.discard(con)
                        continue
                    return con
                if len(self._all) + self._opening < self._max_size:
                    return await self._open()
                con = await self._idle.get()
                if not con.is_closed():
                    return con
                self._all.discard(con)

        if timeout is None:
            return await take()
        return await asyncio.wait_for(take(), timeout)

    async def release(self, connection, *, timeout: float | None = None) -> None:
        """Gives a connection back."""
        if connection not in self._all:
            raise exceptions.InterfaceError("Pool.release() received invalid connection")
        if connection.is_closed() or self._closed:
            self._all.discard(connection)
            return
        if connection.is_in_transaction():
            await connection.execute("ROLLBACK")
        assert self._idle is not None
        self._idle.put_nowait(connection)

    async def close(self) -> None:
        """Closes every connection."""
        self._closed = True
        for con in list(self._all):
            await con.close()
        self._all.clear()

    def terminate(self) -> None:
        """Closes every connection at once."""
        self._closed = True
        for con in self._all:
            con.terminate()
        self._all.clear()

    def get_size(self) -> int:
        """How many connections are open."""
        return len(self._all)

    def get_min_size(self) -> int:
        """The configured minimum."""
        return self._min_size

    def get_max_size(self) -> int:
        """The configured maximum."""
        return self._max_size

    async def __aenter__(self) -> Pool:
        if not self._initialized:
            await self._async_init()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        """Runs ``execute`` on a pooled connection."""
        con = await self.acquire()
        try:
            return await con.execute(query, *args, timeout=timeout)
        finally:
            await self.release(con)

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list:
        """Runs ``fetch`` on a pooled connection."""
        con = await self.acquire()
        try:
            return await con.fetch(query, *args, timeout=timeout)
        finally:
            await self.release(con)


def create_pool(dsn: str | None = None, *, min_size: int = 10, max_size: int = 10, **kwargs: Any):
    """Creates a pool; ``await`` it (or use ``async with``) before use."""
    return Pool(dsn, min_size=min_size, max_size=max_size, **kwargs)

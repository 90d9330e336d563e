"""COPY in and out of a Connection: tables, queries, files, streams and records."""

from __future__ import annotations

import asyncio
import collections
import os
from typing import Any

from . import exceptions, utils

__all__ = ("CopyMixin",)

#: How much a read from a file source takes at a time.
_READ_CHUNK = 512 * 1024
#: Bytes of encoded records per CopyData message.
_RECORDS_CHUNK = 512 * 1024
#: Chunks a COPY TO may hold before we stop reading from the server.
_HIGH_WATER = 64
_LOW_WATER = 16


def _format_copy_opts(**opts: Any) -> str:
    """COPY's option list, ``(FORMAT csv, DELIMITER ',' ...)``, from keyword arguments."""
    parts = []
    force_quote = opts.pop("force_quote", None)
    if isinstance(force_quote, bool):
        if force_quote:
            parts.append("FORCE_QUOTE *")
    elif force_quote is not None:
        opts["force_quote"] = force_quote
    for key, value in opts.items():
        if value is None:
            continue
        if key in ("force_not_null", "force_null", "force_quote"):
            value = "(" + ", ".join(utils._quote_ident(c) for c in value) + ")"
        elif isinstance(value, bool):
            value = "TRUE" if value else "FALSE"
        elif isinstance(value, int) and key in ("oids", "freeze", "header"):
            value = str(int(value))
        else:
            # Strings only, quoted by the core's rule: every other value is refused
            # rather than pasted into the statement.
            value = utils._quote_literal(value)
        parts.append(f"{key.upper()} {value}")
    return "(" + ", ".join(parts) + ")" if parts else ""


#: The COPY options the copy methods take as keyword arguments, in the order COPY's
#: option list is written.
_COPY_OPTIONS = (
    "format",
    "oids",
    "freeze",
    "delimiter",
    "null",
    "header",
    "quote",
    "escape",
    "force_quote",
    "force_not_null",
    "force_null",
    "encoding",
)


def _copy_options(arguments: dict[str, Any]) -> str:
    """The option list for a copy method called with ``arguments`` (its ``locals()``
    taken before anything else): the COPY options among them that it has."""
    return _format_copy_opts(
        **{name: arguments[name] for name in _COPY_OPTIONS if name in arguments}
    )


def _table(table_name: str, schema_name: str | None) -> str:
    name = utils._quote_ident(table_name)
    if schema_name:
        name = utils._quote_ident(schema_name) + "." + name
    return name


def _columns(columns: Any) -> str:
    if not columns:
        return ""
    return "(" + ", ".join(utils._quote_ident(c) for c in columns) + ")"


class CopyMixin:
    """The ``copy_*`` methods of Connection."""

    async def copy_from_table(
        self,
        table_name: str,
        *,
        output: Any,
        columns: Any = None,
        schema_name: str | None = None,
        timeout: float | None = None,
        format: Any = None,
        oids: Any = None,
        delimiter: Any = None,
        null: Any = None,
        header: Any = None,
        quote: Any = None,
        escape: Any = None,
        force_quote: Any = None,
        encoding: Any = None,
    ) -> str:
        """Copies a table's contents to ``output`` (a path, a file, or an async callable)."""
        opts = _copy_options(locals())
        sql = f"COPY {_table(table_name, schema_name)}{_columns(columns)} TO STDOUT {opts}"
        return await self._copy_out(sql, output, timeout)

    async def copy_from_query(
        self,
        query: str,
        *args: Any,
        output: Any,
        timeout: float | None = None,
        format: Any = None,
        oids: Any = None,
        delimiter: Any = None,
        null: Any = None,
        header: Any = None,
        quote: Any = None,
        escape: Any = None,
        force_quote: Any = None,
        encoding: Any = None,
    ) -> str:
        """Copies a query's result to ``output``; arguments are inlined as literals."""
        opts = _copy_options(locals())
        if args:
            query = await utils._mogrify(self, query, args)
        return await self._copy_out(f"COPY ({query}) TO STDOUT {opts}", output, timeout)

    async def copy_to_table(
        self,
        table_name: str,
        *,
        source: Any,
        columns: Any = None,
        schema_name: str | None = None,
        timeout: float | None = None,
        format: Any = None,
        oids: Any = None,
        freeze: Any = None,
        delimiter: Any = None,
        null: Any = None,
        header: Any = None,
        quote: Any = None,
        escape: Any = None,
        force_quote: Any = None,
        force_not_null: Any = None,
        force_null: Any = None,
        encoding: Any = None,
        where: Any = None,
    ) -> str:
        """Copies ``source`` (a path, a file, bytes, or an async iterable) into a table."""
        # FORCE_QUOTE is an option of COPY TO only: taken for asyncpg's signature, and
        # left out of the statement as asyncpg does.
        opts = _copy_options({**locals(), "force_quote": None})
        sql = f"COPY {_table(table_name, schema_name)}{_columns(columns)} FROM STDIN {opts}"
        if where:
            sql += f" WHERE {where}"
        return await self._copy_in(sql, source, timeout)

    async def copy_records_to_table(
        self,
        table_name: str,
        *,
        records: Any,
        columns: Any = None,
        schema_name: str | None = None,
        timeout: float | None = None,
        where: Any = None,
    ) -> str:
        """Copies tuples into a table with binary COPY (sync or async iterable)."""
        tab = _table(table_name, schema_name)
        cols = ", ".join(utils._quote_ident(c) for c in columns) if columns else "*"
        timeout = self._timeout(timeout)
        await self._ready_for_operation(timeout)
        stmt = await self._get_statement(f"SELECT {cols} FROM {tab} LIMIT 1", timeout)
        self._protocol.check_copy_binary(stmt)
        col_list = "(" + ", ".join(utils._quote_ident(name) for name, *_ in stmt.columns) + ")"
        sql = f"COPY {tab}{col_list} FROM STDIN (FORMAT binary)"
        if where:
            sql += f" WHERE {where}"
        return await self._copy_in(sql, _Records(stmt, records), timeout)

    # ------------------------------------------------------------ the two directions

    async def _copy_out(self, sql: str, output: Any, timeout: float | None) -> str:
        timeout = self._timeout(timeout)
        await self._ready_for_operation(timeout)
        writer, close = await self._open_sink(output)
        try:
            return await self._wait(
                self._loop.create_task(self._run_copy_out(sql, writer)), timeout
            )
        finally:
            close()

    async def _open_sink(self, output: Any):
        try:
            path = os.fspath(output)
        except TypeError:
            path = None
        loop = self._loop
        if path is not None:
            f = await loop.run_in_executor(None, open, path, "wb")

            async def write_file(data: bytes) -> None:
                await loop.run_in_executor(None, f.write, data)

            return write_file, f.close
        if hasattr(output, "write"):

            async def write_obj(data: bytes) -> None:
                output.write(data)

            return write_obj, lambda: None
        if callable(output):
            return output, lambda: None
        raise TypeError(f"output is expected to be a file-like object, got {output!r}")

    async def _run_copy_out(self, sql: str, writer: Any) -> str:
        chunks: collections.deque = collections.deque()
        transport = self._transport
        state = {"paused": False, "wakeup": None}

        def sink(data: bytes) -> None:
            # Runs inside data_received: queue, and stop reading if the writer lags.
            if fut.done():
                # The consumer went away: drop the rest. Pausing now would stall the
                # server in its write, where no cancel request reaches it.
                return
            chunks.append(data)
            if len(chunks) >= _HIGH_WATER and not state["paused"]:
                state["paused"] = True
                transport.pause_reading()
            w = state["wakeup"]
            if w is not None and not w.done():
                w.set_result(None)

        fut = self._protocol.copy_out(sql, sink)
        try:
            while True:
                while chunks:
                    data = chunks.popleft()
                    if state["paused"] and len(chunks) <= _LOW_WATER:
                        state["paused"] = False
                        transport.resume_reading()
                    await writer(data)
                if fut.done():
                    if not chunks:
                        break
                    continue
                wakeup = self._loop.create_future()
                state["wakeup"] = wakeup
                fut.add_done_callback(lambda _f, w=wakeup: w.done() or w.set_result(None))
                await wakeup
            return fut.result()
        except BaseException:
            # The writer failed or we were cancelled: stop the server's COPY.
            if state["paused"]:
                transport.resume_reading()
            if not fut.done():
                fut.cancel()
                self._cancel_current_command()
            raise

    async def _copy_in(self, sql: str, source: Any, timeout: float | None) -> str:
        timeout = self._timeout(timeout)
        await self._ready_for_operation(timeout)
        return await self._wait(self._loop.create_task(self._run_copy_in(sql, source)), timeout)

    async def _run_copy_in(self, sql: str, source: Any) -> str:
        protocol = self._protocol
        ready, fut = protocol.copy_in(sql)
        try:
            await ready
        except BaseException:
            if fut.done():
                # The COPY ended before it started: the operation's error is the one
                # raised here, so the future's copy of it counts as seen.
                if not fut.cancelled():
                    fut.exception()
            else:
                fut.cancel()
            raise
        # The op's future resolves early when the server ends the COPY with an error or
        # the connection is lost: feeding then stops, even from an endless source.
        try:
            if isinstance(source, _Records):
                first = True
                iterator = source.records
                if hasattr(iterator, "__aiter__"):
                    async for batch in _batches(iterator):
                        it = iter(batch)
                        while protocol.copy_records(source.stmt, it, _RECORDS_CHUNK, first, False):
                            first = False
                            await protocol.writing_allowed()
                        first = False
                        await protocol.writing_allowed()
                        if fut.done():
                            return await fut
                    protocol.copy_records(source.stmt, iter(()), _RECORDS_CHUNK, first, True)
                else:
                    it = iter(iterator)
                    while protocol.copy_records(source.stmt, it, _RECORDS_CHUNK, first, True):
                        first = False
                        await protocol.writing_allowed()
                        if fut.done():
                            return await fut
            else:
                async for chunk in self._source_chunks(source):
                    protocol.copy_data(chunk)
                    await protocol.writing_allowed()
                    if fut.done():
                        return await fut
        except BaseException as e:
            # The server rolls the COPY back on CopyFail; its error follows.
            protocol.copy_fail(_describe(e))
            try:
                await asyncio.shield(fut)
            except exceptions.PostgresError:
                pass
            except BaseException:
                # Cancelled again while waiting for the server's answer: abandon the
                # COPY's future too, or the connection would count as busy.
                fut.cancel()
                raise
            raise
        protocol.copy_done()
        return await fut

    async def _source_chunks(self, source: Any):
        if isinstance(source, (bytes, bytearray, memoryview)):
            yield bytes(source)
            return
        try:
            path = os.fspath(source)
        except TypeError:
            path = None
        loop = self._loop
        if path is not None:
            f = await loop.run_in_executor(None, open, path, "rb")
            try:
                while data := await loop.run_in_executor(None, f.read, _READ_CHUNK):
                    yield data
            finally:
                f.close()
            return
        if hasattr(source, "read"):
            while data := await loop.run_in_executor(None, source.read, _READ_CHUNK):
                yield data
            return
        if hasattr(source, "__aiter__"):
            async for data in source:
                yield bytes(data)
            return
        raise TypeError(f"source is expected to be a file-like object or bytes, got {source!r}")


def _describe(exc: BaseException) -> str:
    """The CopyFail message for a client-side failure; never fails itself."""
    try:
        text = f"{type(exc).__name__}: {exc}"
    except Exception:
        text = type(exc).__name__
    return text[:500]


class _Records:
    """Records for binary COPY, with the statement whose columns say how to encode them."""

    __slots__ = ("stmt", "records")

    def __init__(self, stmt: Any, records: Any) -> None:
        self.stmt = stmt
        self.records = records


async def _batches(aiterable: Any, size: int = 1000):
    batch = []
    async for item in aiterable:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch

"""Type introspection and user codecs of a :class:`~ferropg.Connection`.

The protocol keeps what the connection knows of each type (``add_types``) and the codecs
the user set; this mixin asks the catalog and applies asyncpg's rules on what may get a
codec.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _introspection, exceptions
from ._builtin_types import BUILTIN_TYPES, TUPLE_FORMAT_TYPES

# SQL spellings of built-in types, besides their pg_type names.
_ALIASES = {
    "smallint": "int2",
    "int": "int4",
    "integer": "int4",
    "bigint": "int8",
    "real": "float4",
    "float": "float8",
    "double precision": "float8",
    "decimal": "numeric",
    "boolean": "bool",
    "character varying": "varchar",
    "character": "bpchar",
    # In SQL, char is character (bpchar); the one-byte type is spelt "char", quoted.
    "char": "bpchar",
    "time with timezone": "timetz",
    "time without timezone": "time",
    "timestamp with timezone": "timestamptz",
    "timestamp without timezone": "timestamp",
    "bit varying": "varbit",
}

BUILTIN_TYPE_NAME_MAP: dict[str, int] = {name: oid for oid, (name, _kind) in BUILTIN_TYPES.items()}
BUILTIN_TYPE_NAME_MAP.update(
    {alias: BUILTIN_TYPE_NAME_MAP[name] for alias, name in _ALIASES.items()}
)

# set_builtin_type_codec's names of codecs for extension types without a fixed OID.
_EXTENSION_CODECS = {"pg_contrib.hstore": "hstore"}

# Introspection rounds before giving up (a race with reload_schema_state costs one).
_MAX_INTROSPECTION_TRIES = 5


class _TypeRecord(tuple):
    """What _introspect_type returns for a built-in type without asking the server."""

    _KEYS = {"oid": 0, "elemtype": 1, "kind": 2}

    def __getitem__(self, key):
        if isinstance(key, str):
            key = self._KEYS[key]
        return super().__getitem__(key)


def _codec_refusal(typeinfo: Any, qualified: str, format: str) -> Exception | None:
    """Why a codec of ``format`` cannot be set on the type, or None when it can."""
    if _introspection.is_composite_type(typeinfo):
        if format == "tuple":
            return None
        return exceptions.UnsupportedClientFeatureError(
            "only tuple-format codecs can be used on composite types",
            hint="Pass format='tuple': the encoder then returns, and the decoder receives, "
            "a tuple of the attribute values.",
        )
    if not _introspection.is_scalar_type(typeinfo):
        return exceptions.InterfaceError(
            f"cannot use custom codec on type {qualified}: "
            "it is neither a scalar type nor a composite type"
        )
    if format == "tuple" and typeinfo["oid"] not in TUPLE_FORMAT_TYPES:
        return exceptions.UnsupportedClientFeatureError(
            f"type {qualified} has no tuple format",
            hint="Use format='text' or format='binary'; the tuple format exists "
            "for composites and date, time, timetz, timestamp, timestamptz and "
            "interval.",
        )
    return None


class CodecsMixin:
    """``set_type_codec`` and friends, and the introspection behind prepared statements."""

    async def _introspect_types(self, typeoids, timeout):
        """Describes ``typeoids`` and everything they are built of: ``(rows, statement)``.

        Runs without the user's codecs; a ``connection_class`` may override it.
        """
        query = _introspection.types_query(self._server_version_num())
        stmt = await self._get_statement(query, timeout, ignore_custom_codec=True)
        rows = await self._wait(
            self._protocol.execute_statement(stmt, (list(typeoids),), 0, True), timeout
        )
        return rows, stmt

    async def _introspect_type(self, typename: str, schema: str):
        """The ``(oid, elemtype, kind)`` record of one type, looked up by name."""
        if schema == "pg_catalog" and not typename.endswith("[]"):
            oid = BUILTIN_TYPE_NAME_MAP.get(typename.lower())
            if oid is not None:
                kind = BUILTIN_TYPES[oid][1]
                return _TypeRecord((oid, None, b"c" if kind == "composite" else b"b"))
        stmt = await self._get_statement(
            _introspection.TYPE_BY_NAME, None, ignore_custom_codec=True
        )
        rows = await self._wait(
            self._protocol.execute_statement(stmt, (typename, schema), 1, True), None
        )
        if not rows:
            raise ValueError(f"unknown type: {schema}.{typename}")
        return rows[0]

    async def _learn_type(self, oid: int) -> None:
        """Introspects a type that gets a codec, so statements can name it."""
        if oid not in BUILTIN_TYPES:
            rows, _ = await self._introspect_types((oid,), 10)
            self._protocol.add_types(rows)

    async def _resolve_types(self, stmt, timeout):
        """Introspects what ``stmt`` needs until every type is known; returns the statement
        with its final codecs."""
        missing = self._protocol.missing_types(stmt)
        if not missing:
            return stmt
        tries = 0
        while missing:
            tries += 1
            if tries > _MAX_INTROSPECTION_TRIES:
                raise exceptions.InternalClientError(
                    f"could not resolve query result and/or argument types in {tries - 1} attempts"
                )
            rows, _ = await self._introspect_types(missing, timeout)
            self._protocol.add_types(rows)
            missing = self._protocol.missing_types(stmt)
        return self._protocol.rebuild_statement(stmt)

    async def set_type_codec(
        self,
        typename: str,
        *,
        schema: str = "public",
        encoder: Callable[[Any], Any],
        decoder: Callable[[Any], Any],
        format: str = "text",
    ) -> None:
        """Sets an encoder/decoder pair for a type: ``format`` 'text' (str), 'binary'
        (bytes) or, for composites only, 'tuple' (a tuple of attribute values)."""
        self._check_open()
        if format not in ("text", "binary", "tuple"):
            raise exceptions.InterfaceError(
                f"invalid format {format!r}: expected 'text', 'binary' or 'tuple'"
            )
        typeinfo = await self._introspect_type(typename, schema)
        refusal = _codec_refusal(typeinfo, f"{schema}.{typename}", format)
        if refusal is not None:
            raise refusal
        await self._learn_type(typeinfo["oid"])
        if _introspection.is_domain_type(typeinfo):
            raise exceptions.UnsupportedClientFeatureError(
                "custom codecs on domain types are not supported",
                hint="Set the codec on the base type.",
                detail=(
                    "Result columns of a domain type arrive described as its base type, so "
                    "a codec registered for the domain itself would never be used."
                ),
            )
        self._protocol.set_type_codec(typeinfo["oid"], format, encoder, decoder)
        # Cached statements hold the codecs they were prepared with.
        self._drop_local_statement_cache()

    async def reset_type_codec(self, typename: str, *, schema: str = "public") -> None:
        """Puts the type back on its default codec."""
        typeinfo = await self._introspect_type(typename, schema)
        self._protocol.reset_type_codec(typeinfo["oid"])
        self._drop_local_statement_cache()

    async def set_builtin_type_codec(
        self,
        typename: str,
        *,
        schema: str = "public",
        codec_name: str,
        format: str | None = None,
    ) -> None:
        """Exchanges a scalar type with a built-in codec: that of a core type (e.g.
        ``'int'``), or of a supported extension type (``'pg_contrib.hstore'``)."""
        self._check_open()
        if format not in (None, "text", "binary"):
            raise exceptions.InterfaceError(
                f"invalid format {format!r}: expected None, 'text' or 'binary'"
            )
        typeinfo = await self._introspect_type(typename, schema)
        if not _introspection.is_scalar_type(typeinfo):
            raise exceptions.InterfaceError(f"cannot alias non-scalar type {schema}.{typename}")
        await self._learn_type(typeinfo["oid"])
        target = _EXTENSION_CODECS.get(codec_name)
        if target is None:
            target = BUILTIN_TYPE_NAME_MAP.get(codec_name.lower())
            if target is None:
                raise exceptions.InterfaceError(f"unknown builtin codec: {codec_name!r}")
        self._protocol.set_builtin_type_codec(typeinfo["oid"], target, format == "text")
        self._drop_local_statement_cache()

    async def reload_schema_state(self) -> None:
        """Forgets the cached types and statements: call it after changing the schema
        (asyncpg raises OutdatedSchemaCacheError when a composite changed under it)."""
        self._schema_changed()

    def _schema_changed(self) -> None:
        # Also run when a decoded composite no longer matches its cached type: nothing
        # cached can be trusted then (that query already ran, so it is not retried).
        self._drop_global_type_cache()
        self._drop_global_statement_cache()

    def _drop_local_type_cache(self) -> None:
        self._protocol.clear_types()

    def _drop_global_type_cache(self) -> None:
        # In a pool, every connection may have cached the changed type.
        if self._proxy is not None:
            self._proxy._holder._pool._drop_type_cache()
        else:
            self._drop_local_type_cache()

    def _server_version_num(self) -> int:
        v = self.get_server_version()
        return v.major * 10000 + (v.minor if v.major < 10 else 0) * 100

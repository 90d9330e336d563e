"""Value types that codecs return or accept, type descriptions, and the server version."""

from __future__ import annotations

from typing import NamedTuple

from . import _native

#: The uuid.UUID subclass that uuid columns decode to.
UUID = _native.uuid_type()


class ServerVersion(NamedTuple):
    """The server's version, as ``(major, minor, micro, releaselevel, serial)``."""

    major: int
    minor: int
    micro: int
    releaselevel: str
    serial: int


class Type(NamedTuple):
    """A data type: its OID, name, kind ('scalar', 'array', 'composite', 'range'...) and schema."""

    oid: int
    name: str
    kind: str
    schema: str


class Attribute(NamedTuple):
    """A result column: its name and :class:`Type`."""

    name: str
    type: Type


_BUILTIN_NAMES = {
    16: "bool",
    17: "bytea",
    18: "char",
    19: "name",
    20: "int8",
    21: "int2",
    23: "int4",
    25: "text",
    26: "oid",
    114: "json",
    142: "xml",
    700: "float4",
    701: "float8",
    705: "unknown",
    1042: "bpchar",
    1043: "varchar",
    1082: "date",
    1083: "time",
    1114: "timestamp",
    1184: "timestamptz",
    1186: "interval",
    1266: "timetz",
    1700: "numeric",
    2278: "void",
    2950: "uuid",
    3802: "jsonb",
    869: "inet",
    650: "cidr",
    1007: "int4",
    1009: "text",
}
_ARRAYS = {1007, 1009}


def builtin_type(oid: int) -> Type:
    """A :class:`Type` for a type OID, named when it is a built-in type we know."""
    name = _BUILTIN_NAMES.get(oid)
    if name is None:
        return Type(oid, "", "scalar", "")
    return Type(oid, name, "array" if oid in _ARRAYS else "scalar", "pg_catalog")


__all__ = ("Attribute", "ServerVersion", "Type")

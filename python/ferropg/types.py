"""Value types that codecs return or accept, type descriptions, and the server version."""

from __future__ import annotations

from typing import NamedTuple

from . import _native
from ._builtin_types import BUILTIN_TYPES

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


def builtin_type(oid: int) -> Type:
    """A :class:`Type` for a type OID: named when it is a built-in type."""
    entry = BUILTIN_TYPES.get(oid)
    if entry is None:
        return Type(oid, "", "scalar", "")
    name, kind = entry
    return Type(oid, name, kind, "pg_catalog")


__all__ = ("Attribute", "ServerVersion", "Type")

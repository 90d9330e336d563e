"""Value types that codecs return or accept, and the server version tuple."""

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


__all__ = ("ServerVersion",)

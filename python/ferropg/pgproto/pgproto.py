"""``asyncpg.pgproto.pgproto``'s names that code outside asyncpg imports.

asyncpg's module is compiled and mostly holds its codecs and buffers, which ferropg
implements in Rust; what other code takes from it is the UUID class, to recognise the
values of uuid columns (``isinstance(value, UUID)``) or to register an encoder for them.
"""

# Not asyncpg's own: editors' auto-import has written
# ``from asyncpg.pgproto.pgproto import timedelta`` into applications, and asyncpg's
# module namespace does hold the standard class.
from datetime import timedelta

from ..types import UUID

__all__ = ("UUID", "timedelta")

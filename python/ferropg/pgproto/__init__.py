"""``ferropg.pgproto``: where asyncpg code finds its wire-level value classes.

asyncpg compiles its value codecs into ``asyncpg.pgproto.pgproto`` and keeps the
geometric and bit-string classes in ``asyncpg.pgproto.types``; libraries and
applications import from both paths (see ``docs/import-paths.md``).  Here the two
submodules only name the classes that ferropg's codecs return:

* :mod:`ferropg.pgproto.pgproto`: ``UUID``, the :class:`uuid.UUID` subclass of uuid
  columns;
* :mod:`ferropg.pgproto.types`: ``BitString``, ``Point``, ``Box``, ``Line``,
  ``LineSegment``, ``Circle``, ``Path`` and ``Polygon`` (from :mod:`ferropg.types`).

``UUID`` is also an attribute of this package, the module its ``__module__`` names, so
that the class itself pickles and reprs by a name that imports.
"""

from . import pgproto, types
from .pgproto import UUID

__all__ = ("UUID", "pgproto", "types")

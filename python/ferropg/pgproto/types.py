"""``asyncpg.pgproto.types``: the geometric and bit-string value classes.

They are defined in :mod:`ferropg.types`, which also exports them at the top of the
package; this module gives them asyncpg's second import path.
"""

from ..types import BitString, Box, Circle, Line, LineSegment, Path, Point, Polygon

__all__ = ("BitString", "Box", "Circle", "Line", "LineSegment", "Path", "Point", "Polygon")

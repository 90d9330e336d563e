"""``Record``, the row type, under asyncpg's module name."""

from .protocol import Record

__all__ = ("Record",)

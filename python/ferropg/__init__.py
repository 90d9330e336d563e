"""ferropg: a PostgreSQL driver with a Rust core, and an asyncio drop-in for asyncpg.

``import ferropg as asyncpg`` and asyncpg code runs unchanged.
"""

from . import exceptions
from .connection import Connection, connect
from .exceptions import *  # noqa: F403
from .pool import Pool, create_pool
from .protocol import Record
from .types import *  # noqa: F403

__version__ = "0.1.0"

__all__ = ("Connection", "Pool", "Record", "connect", "create_pool", *exceptions.__all__)

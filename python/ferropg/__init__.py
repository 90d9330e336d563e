"""ferropg: a PostgreSQL driver with a Rust core, and an asyncio drop-in for asyncpg.

``import ferropg as asyncpg`` and asyncpg code runs unchanged.  For libraries that
import asyncpg by name (SQLAlchemy's dialect, Sentry, OpenTelemetry, piccolo...), call
:func:`install_as_asyncpg` first.
"""

from . import exceptions
from . import pgproto as pgproto
from ._alias import install_as_asyncpg as install_as_asyncpg
from .connection import Connection, connect
from .exceptions import *  # noqa: F403
from .pool import Pool, create_pool
from .protocol import Record
from .types import *  # noqa: F403

#: ferropg's own release.
VERSION = "0.1.0"

#: The asyncpg release whose API ferropg reproduces (its test suite is the conformance
#: target).  Code that reads ``asyncpg.__version__``, such as Sentry's integration, which
#: turns itself off below 0.23, asks which asyncpg API it is given; see
#: docs/import-paths.md.
__version__ = "0.32.0"

__all__ = ("Connection", "Pool", "Record", "connect", "create_pool", *exceptions.__all__)

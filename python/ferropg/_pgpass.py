"""The password file (``~/.pgpass``, ``PGPASSFILE``, ``passfile=``): where the password
comes from when neither the arguments, the DSN nor ``PGPASSWORD`` give one.

Its lines and which entry wins are the core's rules (``ferropg_core::config::passfile``);
reading the file, and refusing one that others may read, happen here."""

from __future__ import annotations

import os
import pathlib
import stat
import warnings
from collections.abc import Iterable

from . import _native
from ._home import home_file

__all__ = ("default_passfile", "password_from_passfile", "read_passfile_text")


def default_passfile() -> pathlib.Path | None:
    """``~/.pgpass``, or None when there is no home directory to look in."""
    return home_file(".pgpass")


def read_passfile_text(path: pathlib.Path) -> str | None:
    """The text of a password file, or None for a missing one. One that is not a
    regular file, or that others may read, is ignored with a warning, as libpq does."""
    try:
        if not path.exists():
            return None
        if not path.is_file():
            warnings.warn(f"password file {str(path)!r} is not a plain file", stacklevel=3)
            return None
        if os.name != "nt" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.warn(
                f"password file {str(path)!r} has group or world access; "
                "permissions should be u=rw (0600) or less",
                stacklevel=3,
            )
            return None
        return path.read_text(errors="replace")
    except OSError:
        return None


def password_from_passfile(
    path: pathlib.Path,
    addrs: Iterable[str | tuple[str, int]],
    database: str,
    user: str,
) -> str | None:
    """The password of the first entry that matches an address (in order), the database
    and the user; ``*`` matches anything, and a Unix socket is ``localhost``."""
    text = read_passfile_text(path)
    if not text:
        return None
    pairs = []
    for addr in addrs:
        if isinstance(addr, str):
            port = addr.rsplit(".", 1)[-1]
            pairs.append(("localhost", int(port) if port.isdigit() else 0))
        else:
            pairs.append((addr[0], int(addr[1])))
    return _native.passfile_password(text, pairs, database, user)

"""The password file (``~/.pgpass``, ``PGPASSFILE``, ``passfile=``): where the password
comes from when neither the arguments, the DSN nor ``PGPASSWORD`` give one."""

from __future__ import annotations

import os
import pathlib
import re
import stat
import warnings
from collections.abc import Iterable

from ._home import home_file

__all__ = ("default_passfile", "password_from_passfile", "read_passfile")

# A colon separates fields unless a backslash escapes it.
_FIELD_SEPARATOR = re.compile(r"(?<!\\):")


def default_passfile() -> pathlib.Path | None:
    """``~/.pgpass``, or None when there is no home directory to look in."""
    return home_file(".pgpass")


def read_passfile(path: pathlib.Path) -> list[tuple[str, ...]]:
    """The entries of a password file: (host, port, database, user, password) each.

    A missing file has none. One that is not a regular file, or that others may read,
    is ignored with a warning, as libpq does. Fields are compared as written, escapes
    included, as asyncpg does (so ``test\\:db`` in the file matches a database named
    ``test\\:db``); only the separating colons are told apart from escaped ones.
    """
    try:
        if not path.exists():
            return []
        if not path.is_file():
            warnings.warn(f"password file {str(path)!r} is not a plain file", stacklevel=3)
            return []
        if os.name != "nt" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.warn(
                f"password file {str(path)!r} has group or world access; "
                "permissions should be u=rw (0600) or less",
                stacklevel=3,
            )
            return []
        entries = []
        with path.open() as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                # An escaped backslash must not escape the colon after it.
                line = line.replace("\\\\", "\n")
                fields = _FIELD_SEPARATOR.split(line, maxsplit=4)
                if len(fields) == 5:
                    entries.append(tuple(p.replace("\n", "\\\\") for p in fields))
        return entries
    except OSError:
        return []


def password_from_passfile(
    path: pathlib.Path,
    addrs: Iterable[str | tuple[str, int]],
    database: str,
    user: str,
) -> str | None:
    """The password of the first entry that matches an address (in order), the database
    and the user; ``*`` matches anything, and a Unix socket is ``localhost``."""
    entries = read_passfile(path)
    if not entries:
        return None
    for addr in addrs:
        if isinstance(addr, str):
            host, port = "localhost", addr.rsplit(".", 1)[-1]
        else:
            host, port = addr[0], str(addr[1])
        for e_host, e_port, e_database, e_user, e_password in entries:
            if (
                e_host in ("*", host)
                and e_port in ("*", port)
                and e_database in ("*", database)
                and e_user in ("*", user)
            ):
                return e_password
    return None

"""Where libpq's per-user files live: below the home directory, when there is one."""

from __future__ import annotations

import pathlib

__all__ = ("home_file",)


def home_file(*parts: str) -> pathlib.Path | None:
    """``~/<parts>``, or None when the home directory cannot be determined (HOME unset
    and no password-database entry)."""
    try:
        return pathlib.Path.home().joinpath(*parts)
    except (RuntimeError, KeyError):
        return None

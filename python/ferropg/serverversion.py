"""Parsing the server's version string into a ServerVersion."""

import re

from .types import ServerVersion

_VERSION = re.compile(r"(?P<nums>\d+(?:\.\d+)*)(?P<level>devel|alpha|beta|rc)?(?P<serial>\d+)?")
_LEVELS = {"rc": "candidate"}


def split_server_version_string(version_string: str) -> ServerVersion:
    """Reads ``'9.6.24'``, ``'PostgreSQL 10.1 (Debian 10.1-3)'`` or ``'17beta2'``.

    From PostgreSQL 10 on, versions have two numbers (major.minor), reported here as
    ``(major, 0, minor)`` so that the third field is always the bug-fix release.
    """
    m = _VERSION.search(version_string)
    if m is None:
        raise ValueError(f"Unable to parse Postgres version from {version_string!r}")
    nums = [int(n) for n in m.group("nums").split(".")]
    level = m.group("level")
    serial = int(m.group("serial") or 0)
    major = nums[0]
    if major >= 10:
        minor, micro = 0, nums[1] if len(nums) > 1 else 0
    else:
        minor = nums[1] if len(nums) > 1 else 0
        micro = nums[2] if len(nums) > 2 else 0
    if level is None:
        return ServerVersion(major, minor, micro, "final", 0)
    return ServerVersion(major, minor, micro, _LEVELS.get(level, level), serial)


__all__ = ("split_server_version_string",)

"""Connection service files (``pg_service.conf``): named sets of connection parameters,
chosen with ``service=`` (argument, DSN or ``PGSERVICE``)."""

from __future__ import annotations

import configparser
import os
import pathlib

from . import exceptions
from ._home import home_file

__all__ = ("service_params",)


def _candidates(servicefile: str | None) -> list[pathlib.Path]:
    if servicefile:
        return [pathlib.Path(servicefile)]
    paths = []
    if os.environ.get("PGSERVICEFILE"):
        paths.append(pathlib.Path(os.environ["PGSERVICEFILE"]))
    elif (home := home_file(".pg_service.conf")) is not None:
        paths.append(home)
    if os.environ.get("PGSYSCONFDIR"):
        paths.append(pathlib.Path(os.environ["PGSYSCONFDIR"]) / "pg_service.conf")
    return paths


def service_params(service: str, servicefile: str | None = None) -> dict[str, str]:
    """The parameters of ``service``: from ``servicefile``, else the first of
    ``PGSERVICEFILE`` (or ``~/.pg_service.conf``) and ``$PGSYSCONFDIR/pg_service.conf``
    that defines it. A service defined nowhere raises
    :class:`~ferropg.exceptions.ClientConfigurationError`."""
    for path in _candidates(servicefile):
        # libpq's format: "key=value" lines only, and no section shared by all others.
        parser = configparser.ConfigParser(
            interpolation=None, delimiters=("=",), default_section="\0no default\0"
        )
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            with path.open() as f:
                parser.read_file(f)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
        except (OSError, configparser.Error) as e:
            # Not the parser's message: it quotes the offending line, a password maybe.
            where = f" (line {e.lineno})" if getattr(e, "lineno", None) else ""
            raise exceptions.ClientConfigurationError(
                f'cannot read service file "{path}"{where}: {type(e).__name__}'
            ) from None
        if parser.has_section(service):
            return {k.strip(): v.strip() for k, v in parser.items(service)}
    raise exceptions.ClientConfigurationError(f'definition of service "{service}" not found')

"""Connection service files (``pg_service.conf``): named sets of connection parameters,
chosen with ``service=`` (argument, DSN or ``PGSERVICE``).

Which files are looked at and what a file says are the core's rules
(``ferropg_core::config::service``); reading the files is done here."""

from __future__ import annotations

import os

from . import _native, exceptions
from ._home import home_file

__all__ = ("service_params",)


def service_params(service: str, servicefile: str | None = None) -> dict[str, str]:
    """The parameters of ``service``: from ``servicefile``, else the first of
    ``PGSERVICEFILE`` (or ``~/.pg_service.conf``) and ``$PGSYSCONFDIR/pg_service.conf``
    that defines it. A service defined nowhere raises
    :class:`~ferropg.exceptions.ClientConfigurationError`."""
    home = home_file()
    for path in _native.service_candidates(servicefile, os.environ, str(home) if home else None):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
        except (OSError, UnicodeDecodeError) as e:
            raise exceptions.ClientConfigurationError(
                f'cannot read service file "{path}": {type(e).__name__}'
            ) from None
        try:
            params = _native.service_lookup(text, service)
        except exceptions.ClientConfigurationError as e:
            raise exceptions.ClientConfigurationError(f'service file "{path}": {e}') from None
        if params is not None:
            return dict(params)
    raise exceptions.ClientConfigurationError(f'definition of service "{service}" not found')

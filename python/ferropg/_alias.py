"""``install_as_asyncpg()``: ferropg under the module name ``asyncpg``.

``import ferropg as asyncpg`` changes the name in one's own code only.  Libraries import
asyncpg by its name: SQLAlchemy's dialect (``__import__("asyncpg")``), Sentry's,
OpenTelemetry's and Datadog's instrumentation, piccolo, tortoise, databases.  After
:func:`install_as_asyncpg` those imports give ferropg's own module objects:
``sys.modules["asyncpg"] is ferropg`` and ``asyncpg.cursor is ferropg.cursor``, so what a
library patches (``asyncpg.Connection._execute``, ``asyncpg.connect_utils._connect_addr``)
is the code that runs, and an exception class it catches is the one that is raised.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence

_REAL = __name__.rpartition(".")[0]
_ALIAS = "asyncpg"


def _real_name(alias: str) -> str | None:
    """``ferropg.x.y`` for ``asyncpg.x.y``; None for a name outside the alias."""
    if alias == _ALIAS or alias.startswith(_ALIAS + "."):
        return _REAL + alias[len(_ALIAS) :]
    return None


class _LoadedModule(importlib.abc.Loader):
    """Gives the import system a module that is already imported, as it is."""

    def __init__(self, module: types.ModuleType) -> None:
        self._module = module
        self._spec = module.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self._module

    def exec_module(self, module: types.ModuleType) -> None:
        # Nothing runs again.  The import system has set ``__spec__`` to the alias's
        # spec: the module keeps its own, under which it can be found and reloaded.
        module.__spec__ = self._spec


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Finds ``asyncpg.<name>`` as the module ``ferropg.<name>``, importing it first."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        real = _real_name(fullname)
        if real is None:
            return None
        try:
            module = importlib.import_module(real)
        except ModuleNotFoundError as exc:
            if exc.name is not None and (real == exc.name or real.startswith(exc.name + ".")):
                # ferropg has no such module: asyncpg.<name> does not exist either.
                return None
            raise
        return importlib.util.spec_from_loader(
            fullname, _LoadedModule(module), is_package=hasattr(module, "__path__")
        )


_FINDER = _AliasFinder()


def install_as_asyncpg() -> None:
    """Makes ``import asyncpg`` and ``import asyncpg.<submodule>`` import ferropg.

    Call it once, early, before anything imports asyncpg: before the libraries that use
    asyncpg are imported or set up (``sentry_sdk.init()``, an SQLAlchemy engine with the
    ``postgresql+asyncpg`` dialect, ``AsyncPGInstrumentor().instrument()``).  It is a
    no-op when ferropg already stands for asyncpg, and raises :exc:`RuntimeError` when
    the real asyncpg is already imported: objects of both drivers would then be mixed.

    Submodules that ferropg has under asyncpg's names (``connection``, ``cursor``,
    ``pool``, ``exceptions``, ``pgproto.pgproto`` ...; see ``docs/import-paths.md``)
    import as themselves; any other ``asyncpg.<name>`` raises ModuleNotFoundError.
    """
    package = sys.modules[_REAL]
    current = sys.modules.get(_ALIAS)
    if current is not None and current is not package:
        raise RuntimeError(
            "asyncpg is already imported: call ferropg.install_as_asyncpg() before "
            "anything imports asyncpg"
        )
    for name, module in list(sys.modules.items()):
        if name == _REAL or name.startswith(_REAL + "."):
            sys.modules[_ALIAS + name[len(_REAL) :]] = module
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)

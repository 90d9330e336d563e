"""pytest plugin of the asyncpg-suite conformance runner (``-p alias_plugin``).

``runner.py`` copies this file into a private directory of the run, puts only that directory
on ``PYTHONPATH`` and loads it with ``-p alias_plugin``, so it is imported before pytest
collects any of asyncpg's test modules.  It is configured through environment variables:

``FERROPG_CONFORMANCE_TARGET``
    The module under test (``ferropg``; unset: no aliasing).  For any other value than
    ``asyncpg`` a :data:`sys.meta_path` finder makes ``import asyncpg`` and
    ``import asyncpg.<sub>`` return the module objects ``<target>`` and ``<target>.<sub>``
    themselves, so
    ``asyncpg.connection is ferropg.connection`` and a test that patches ``asyncpg.x.y``
    patches the code under test.  Nothing of asyncpg is used, except:

``FERROPG_CONFORMANCE_FALLBACK_DIR``
    A directory holding asyncpg's pure-Python test harness (``asyncpg/_testbase/``).  When
    the target has no ``_testbase`` (or ``_testbase.fuzzer``), that copy is loaded as
    ``<target>._testbase``.  ``<target>.cluster`` always comes from the target.

``FERROPG_CONFORMANCE_RESULTS``
    A TSV file that gets one line per test as soon as the test has finished:
    ``nodeid<TAB>outcome<TAB>seconds<TAB>short message``.  The outcome is ``passed``,
    ``failed``, ``skipped``, ``error`` (setup or teardown failed), ``xfailed`` or
    ``xpassed``; a test with a failed ``subTest`` is ``failed``; a test module that cannot be
    collected becomes one ``<file>::<COLLECTION>`` line with outcome ``error``.

``FERROPG_CONFORMANCE_TEST_TIMEOUT``
    Seconds allowed per test (``0``: no limit).  Set as asyncpg's
    ``_testbase.TestCaseMeta.TEST_TIMEOUT``, which wraps each ``async def test_*`` body in
    :func:`asyncio.wait_for` (tests decorated ``@with_timeout`` keep their own).  A harness
    without that attribute gets the same limit by wrapping every ``run_until_complete`` of
    the test in :func:`asyncio.wait_for` with the time the test has left.
    ``FERROPG_CONFORMANCE_TIMEOUT_MODE=wrap`` forces the second way (for testing it).

``FERROPG_CONFORMANCE_INFO``
    A JSON file written at the end of the session: the harness modules taken from the
    fallback directory and how the per-test timeout was applied.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import threading
import time
import types
from typing import Any

import pytest

#: The module that ``asyncpg`` stands for in this run (empty: no aliasing).
TARGET = os.environ.get("FERROPG_CONFORMANCE_TARGET", "")
#: Directory with asyncpg's ``asyncpg/_testbase`` (from the 0.32.0 sdist).
FALLBACK_DIR = os.environ.get("FERROPG_CONFORMANCE_FALLBACK_DIR", "")
#: Submodules of asyncpg that may be taken from :data:`FALLBACK_DIR`.
FALLBACK_MODULES = ("_testbase", "_testbase.fuzzer")

_info: dict[str, Any] = {"target": TARGET, "fallback_modules_used": [], "timeout_mode": "off"}


# ------------------------------------------------------------------------ aliasing ---


class _ModuleLoader(importlib.abc.Loader):
    """Loader that "loads" a module object that has already been imported."""

    def __init__(self, module: types.ModuleType) -> None:
        self._module = module
        self._own_spec = getattr(module, "__spec__", None)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        """Return the already-imported target module."""
        return self._module

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to execute; undo ``module_from_spec()`` replacing ``__spec__``."""
        try:
            module.__spec__ = self._own_spec
        except AttributeError:
            pass


class AsyncpgAliasFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder mapping ``asyncpg[.<sub>]`` onto ``<target>[.<sub>]``.

    It also supplies ``<target>._testbase`` and ``<target>._testbase.fuzzer`` from
    :data:`FALLBACK_DIR` when the target has no such modules.
    """

    def __init__(self, target: str, fallback_dir: str) -> None:
        self.target = target
        self.fallback_dir = fallback_dir

    def find_spec(
        self,
        fullname: str,
        path: Any = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        """Find ``asyncpg.*`` (as the target's modules) and the harness fallback."""
        prefix = self.target + "."
        if fullname.startswith(prefix):
            sub = fullname[len(prefix) :]
            if sub in FALLBACK_MODULES and self.fallback_dir:
                return self._fallback_spec(fullname, sub, path, target)
            return None
        if fullname != "asyncpg" and not fullname.startswith("asyncpg."):
            return None
        name = self.target + fullname[len("asyncpg") :]
        module = self._import_target(name)
        if module is None:
            raise ModuleNotFoundError(
                f"No module named {name!r} ({fullname!r} is aliased to it for the conformance run)",
                name=fullname,
            )
        return importlib.util.spec_from_loader(
            fullname, _ModuleLoader(module), is_package=hasattr(module, "__path__")
        )

    @staticmethod
    def _import_target(name: str) -> types.ModuleType | None:
        """Import *name*; ``None`` if it does not exist (other import errors propagate)."""
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as e:
            missing = e.name or ""
            if name != missing and not name.startswith(missing + "."):
                raise  # the module exists but itself imports something missing
        # A native submodule may exist only as an attribute of its package.
        parent, _, child = name.rpartition(".")
        if parent:
            try:
                attr = getattr(importlib.import_module(parent), child, None)
            except ImportError:
                return None
            if isinstance(attr, types.ModuleType):
                sys.modules[name] = attr
                return attr
        return None

    def _fallback_spec(
        self, fullname: str, sub: str, path: Any, target: types.ModuleType | None
    ) -> importlib.machinery.ModuleSpec | None:
        """The sdist's copy of ``asyncpg.<sub>``, unless the target has its own."""
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                # e.g. ``_testbase.fuzzer`` found on the fallback ``_testbase``'s own path
                if spec.origin and spec.origin.startswith(self.fallback_dir + os.sep):
                    _info["fallback_modules_used"].append(sub)
                return None
        base = os.path.join(self.fallback_dir, "asyncpg", *sub.split("."))
        init = os.path.join(base, "__init__.py")
        if os.path.isfile(init):
            spec = importlib.util.spec_from_file_location(
                fullname, init, submodule_search_locations=[base]
            )
        elif os.path.isfile(base + ".py"):
            spec = importlib.util.spec_from_file_location(fullname, base + ".py")
        else:
            return None
        _info["fallback_modules_used"].append(sub)
        return spec


def install_alias(target: str, fallback_dir: str) -> None:
    """Install the alias finder (a no-op when the target is asyncpg itself)."""
    if target == "asyncpg":
        return
    for name in [n for n in sys.modules if n == "asyncpg" or n.startswith("asyncpg.")]:
        del sys.modules[name]
    sys.meta_path.insert(0, AsyncpgAliasFinder(target, fallback_dir))


if TARGET:
    install_alias(TARGET, FALLBACK_DIR)


# ------------------------------------------------------------------- per-test timeout ---

_wrap_timeout: float = 0.0


def _setup_timeout() -> None:
    """Apply ``FERROPG_CONFORMANCE_TEST_TIMEOUT`` (see the module docstring)."""
    global _wrap_timeout
    timeout = float(os.environ.get("FERROPG_CONFORMANCE_TEST_TIMEOUT") or 0)
    if timeout <= 0:
        return
    mode = os.environ.get("FERROPG_CONFORMANCE_TIMEOUT_MODE", "auto")
    meta = None
    if mode != "wrap":
        try:
            from asyncpg import _testbase

            meta = getattr(_testbase, "TestCaseMeta", None)
        except Exception as e:
            print(f"alias_plugin: cannot import asyncpg._testbase: {e!r}", file=sys.stderr)
    if meta is not None and hasattr(meta, "TEST_TIMEOUT"):
        meta.TEST_TIMEOUT = timeout
        _info["timeout_mode"] = f"TestCaseMeta.TEST_TIMEOUT={timeout:g}"
    else:
        _wrap_timeout = timeout
        _info["timeout_mode"] = f"wait_for around run_until_complete, {timeout:g} s"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Bound the test's event-loop runs when ``TEST_TIMEOUT`` is not available."""
    if not _wrap_timeout:
        yield
        return
    timeout = _wrap_timeout
    deadline = time.monotonic() + timeout
    thread = threading.current_thread()
    original = asyncio.BaseEventLoop.run_until_complete

    def run_until_complete(loop: asyncio.AbstractEventLoop, future: Any) -> Any:
        remaining = deadline - time.monotonic()
        # Other threads (e.g. the fuzzing proxy) and clean-up after the deadline run freely.
        if threading.current_thread() is not thread or remaining <= 0:
            return original(loop, future)
        try:
            return original(loop, asyncio.wait_for(future, remaining))
        except TimeoutError:
            if time.monotonic() < deadline:
                raise
            raise AssertionError(f"test timed out after {timeout:g} seconds") from None

    asyncio.BaseEventLoop.run_until_complete = run_until_complete  # type: ignore[method-assign]
    try:
        yield
    finally:
        asyncio.BaseEventLoop.run_until_complete = original  # type: ignore[method-assign]


# ------------------------------------------------------------------ result recording ---


class ResultWriter:
    """Folds pytest's reports into one TSV line per test."""

    def __init__(self, path: str | None) -> None:
        self._path = path
        self._file: Any = None
        self._pending: dict[str, dict[str, Any]] = {}

    def write(self, nodeid: str, outcome: str, seconds: float, message: str = "") -> None:
        """Append one result line (and flush it, so a killed run keeps its results)."""
        if not self._path:
            return
        if self._file is None:
            self._file = open(self._path, "a", encoding="utf-8")
        message = " ".join(str(message).split())[:300]
        self._file.write(f"{nodeid}\t{outcome}\t{seconds:.3f}\t{message}\n")
        self._file.flush()

    def collect_report(self, report: pytest.CollectReport) -> None:
        """Record a module that failed to import as ``<file>::<COLLECTION>``."""
        if report.failed:
            self.write(report.nodeid + "::<COLLECTION>", "error", 0.0, short_message(report))

    def test_report(self, report: pytest.TestReport) -> None:
        """Accumulate the setup/call/teardown (and subtest) reports of a test."""
        st = self._pending.setdefault(
            report.nodeid, {"outcome": None, "seconds": 0.0, "message": "", "subfailed": 0}
        )
        if type(report).__name__.lower() == "subtestreport":
            # pytest >= 9 reports each unittest subTest separately, under the parent's id.
            if report.failed:
                st["subfailed"] += 1
                if not st["message"]:
                    st["message"] = "subtest failed: " + short_message(report)
            return
        st["seconds"] += getattr(report, "duration", 0.0) or 0.0
        xfail = hasattr(report, "wasxfail")
        if report.when == "setup":
            if report.failed:
                st["outcome"], st["message"] = "error", short_message(report)
            elif report.skipped:
                st["outcome"] = "xfailed" if xfail else "skipped"
                st["message"] = short_message(report)
        elif report.when == "call":
            if xfail:
                st["outcome"] = "xfailed" if report.skipped else "xpassed"
            else:
                st["outcome"] = report.outcome
            if not report.passed:
                st["message"] = short_message(report)
        elif report.when == "teardown":
            if report.failed and st["outcome"] in (None, "passed", "skipped"):
                st["outcome"], st["message"] = "error", short_message(report)

    def finish(self, nodeid: str) -> None:
        """Write the folded result of a finished test."""
        st = self._pending.pop(nodeid, None)
        if st is None:
            return
        outcome = st["outcome"] or "error"
        if outcome == "passed" and st["subfailed"]:
            outcome = "failed"
        self.write(nodeid, outcome, st["seconds"], st["message"])

    def close(self) -> None:
        """Close the TSV file."""
        if self._file is not None:
            self._file.close()
            self._file = None


def short_message(report: pytest.BaseReport) -> str:
    """One line saying why a test failed or was skipped."""
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (file, line, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message
    lines = str(longrepr).strip().splitlines()
    return lines[-1] if lines else ""


_writer = ResultWriter(os.environ.get("FERROPG_CONFORMANCE_RESULTS"))


def pytest_sessionstart(session: pytest.Session) -> None:
    """Configure the per-test timeout once the harness can be imported."""
    _setup_timeout()


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """See :meth:`ResultWriter.collect_report`."""
    _writer.collect_report(report)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """See :meth:`ResultWriter.test_report`."""
    _writer.test_report(report)


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    """See :meth:`ResultWriter.finish`."""
    _writer.finish(nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Close the results file and write the run information file."""
    _writer.close()
    path = os.environ.get("FERROPG_CONFORMANCE_INFO")
    if path:
        _info["fallback_modules_used"] = sorted(set(_info["fallback_modules_used"]))
        with open(path, "w", encoding="utf-8") as f:
            json.dump(_info, f, indent=1, sort_keys=True)

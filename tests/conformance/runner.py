"""Run asyncpg 0.32.0's own test suite against ferropg and apply the conformance ratchet.

Usage (normally through ``scripts/conformance.sh``)::

    runner.py [runner options] [--] [pytest args...]

Steps:

1. Fetch the ``asyncpg==0.32.0`` source distribution with pip into the cache directory
   (``--cache-dir``, ``$FERROPG_CACHE_DIR``, ``$XDG_CACHE_HOME/ferropg`` or
   ``~/.cache/ferropg``), check its SHA-256 against :data:`SDIST_SHA256` and unpack it there.
   Only the first run downloads (about 10 s); ``--sdist FILE`` uses a local copy instead.
2. Copy its ``tests/`` (and the pure-Python harness ``asyncpg/_testbase/``) to a fresh run
   directory and run pytest there with upstream's options and ``-p alias_plugin``
   (``alias_plugin.py``: ``import asyncpg`` gives ferropg, one result line per test).
   All ``PG*`` variables are removed from the environment, ``PGINSTALLATION`` is set to the
   PostgreSQL bin directory and ``PGVERSION`` to its major version.  As root, when
   ``unshare --net`` works, the run gets a private network namespace (``--netns``), so the
   suite's servers and proxies never share ports with the host.  ``ferropg.cluster`` runs
   the servers as the ``postgres`` OS user by itself when we are root.
3. Print ``SUMMARY target=ferropg total=N passed=.. failed=.. ...`` (the format of the
   the project's earlier asyncpg-suite runner; it counts the first run) and compare the passing tests
   with ``expected-pass.txt``: every test listed there must pass (in a run narrowed down
   with pytest arguments: every listed test that ran).  Listed tests that did not pass are
   run once more in a fresh pytest process (``--retries``); one that passes then is
   reported as flaky instead of failing the ratchet.

Exit status: 0 when no listed test failed (most of the suite may still fail: the suite's own
pytest status is not the verdict), 1 when a listed test did not pass, 2 when the suite could
not be run (download, hash, PostgreSQL, import or pytest usage problems, whole-run timeout).
``--update`` rewrites ``expected-pass.txt`` with the tests that passed and exits 0.

Results go to ``--out-dir`` (default ``build/conformance/`` of the repository):
``results.tsv`` (nodeid, outcome, seconds, message), ``pytest.log``, ``junit.xml``,
``summary.txt``, ``ratchet.txt``, ``env.txt``, ``info.json``, ``retry-N.tsv``/``.log``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

#: The asyncpg release whose test suite is run.
ASYNCPG_VERSION = "0.32.0"
#: SHA-256 of ``asyncpg-0.32.0.tar.gz`` as published on PyPI.
SDIST_SHA256 = "45e64e56714d888330b884aad1dfb363d0bf43fb343e3d1a8968525f3bade478"
#: File name of the source distribution.
SDIST_NAME = f"asyncpg-{ASYNCPG_VERSION}.tar.gz"

HERE = Path(__file__).resolve().parent
#: The repository root (``tests/conformance/`` is two levels below it).
REPO_ROOT = HERE.parent.parent
#: The ratchet file: one nodeid per line of each test that must keep passing.
EXPECTED_FILE = HERE / "expected-pass.txt"
PLUGIN_FILE = HERE / "alias_plugin.py"

#: pytest options of asyncpg's pyproject.toml, plus what a partial implementation needs:
#: no cache directory in the copied tree, and a module that cannot be imported must not stop
#: the run (it is recorded as ``<file>::<COLLECTION>``).
PYTEST_ADDOPTS = (
    "--capture=no --assert=plain --strict-markers --tb=native --import-mode=importlib"
    " -p no:cacheprovider --continue-on-collection-errors"
)

#: What a run writes into the results directory (removed first).
OUTPUT_FILES = (
    "results.tsv",
    "pytest.log",
    "junit.xml",
    "summary.txt",
    "ratchet.txt",
    "env.txt",
    "info.json",
    "retry-*.tsv",
    "retry-*.log",
)
#: Seconds allowed per test unless ``--test-timeout`` says otherwise.
DEFAULT_TEST_TIMEOUT = 60.0
#: Seconds allowed for the pytest runs (the suite and the retries) unless ``--suite-timeout``
#: says otherwise.
DEFAULT_SUITE_TIMEOUT = 900.0
#: Prefix running a command in a new network namespace with its loopback interface up.
NETNS_WRAPPER = ("unshare", "--net", "--", "/bin/sh", "-c", 'ip link set lo up && exec "$@"', "-")
#: pytest exit statuses that mean "the tests ran" (1: some failed).
PYTEST_RAN = (0, 1)

EXPECTED_HEADER = """\
# asyncpg 0.32.0 test-suite tests that pass against ferropg: the conformance ratchet.
# `make conformance` (scripts/conformance.sh) fails when one of these stops passing.
# After making more tests pass, regenerate with `scripts/conformance.sh --update`.
# One pytest nodeid per line, sorted; lines starting with # are comments.
"""


def log(message: str) -> None:
    """Print a progress line of the runner (to stderr, so stdout stays pytest's)."""
    print(f"[conformance] {message}", file=sys.stderr, flush=True)


class RunnerError(Exception):
    """The suite could not be fetched, set up or run (exit status 2)."""


# ------------------------------------------------------------------------- options ---


@dataclasses.dataclass
class Options:
    """Command-line options of the runner; everything else goes to pytest."""

    update: bool = False
    target: str = "ferropg"
    cache_dir: Path | None = None
    sdist: Path | None = None
    out_dir: Path | None = None
    work_dir: Path | None = None
    keep_work: bool = False
    test_timeout: float = DEFAULT_TEST_TIMEOUT
    suite_timeout: float = DEFAULT_SUITE_TIMEOUT
    netns: str = "auto"
    expected: Path = EXPECTED_FILE
    pg_bindir: Path | None = None
    log_only: bool = False
    retries: int = 1
    pytest_args: list[str] = dataclasses.field(default_factory=list)


def _arg_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="scripts/conformance.sh",
        description="Run asyncpg 0.32.0's test suite against ferropg; fail if a test listed "
        "in tests/conformance/expected-pass.txt does not pass.  Runner options come first; "
        "the first other argument (or everything after --) is passed to pytest.",
        allow_abbrev=False,
    )
    p.add_argument(
        "--update", action="store_true", help="rewrite expected-pass.txt with the passing tests"
    )
    p.add_argument(
        "--target", default="ferropg", help="module tested as asyncpg (default: ferropg)"
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=env("FERROPG_CACHE_DIR") or None,
        help="sdist cache ($FERROPG_CACHE_DIR, else $XDG_CACHE_HOME/ferropg or ~/.cache/ferropg)",
    )
    p.add_argument("--sdist", type=Path, help=f"use this local {SDIST_NAME} (hash-checked)")
    p.add_argument(
        "--out-dir",
        type=Path,
        default=env("FERROPG_CONFORMANCE_OUT") or None,
        help="results directory ($FERROPG_CONFORMANCE_OUT, default build/conformance)",
    )
    p.add_argument(
        "--work-dir",
        type=Path,
        default=env("FERROPG_CONFORMANCE_WORK") or None,
        help="parent of the scratch run directory (default: the system temp dir)",
    )
    p.add_argument("--keep-work", action="store_true", help="keep the scratch run directory")
    p.add_argument(
        "--test-timeout",
        type=float,
        default=float(env("FERROPG_CONFORMANCE_TEST_TIMEOUT") or DEFAULT_TEST_TIMEOUT),
        help="seconds per test, 0 = none (default %(default)s)",
    )
    p.add_argument(
        "--suite-timeout",
        type=float,
        default=float(env("FERROPG_CONFORMANCE_SUITE_TIMEOUT") or DEFAULT_SUITE_TIMEOUT),
        help="seconds for all pytest runs together, retries included (default %(default)s)",
    )
    p.add_argument(
        "--netns",
        choices=("auto", "yes", "no"),
        default=env("FERROPG_CONFORMANCE_NETNS") or "auto",
        help="private network namespace (root only; auto: when `unshare --net` works)",
    )
    p.add_argument(
        "--expected", type=Path, default=EXPECTED_FILE, help="the ratchet file to compare with"
    )
    p.add_argument(
        "--pg-bindir",
        type=Path,
        help="PostgreSQL bin dir (default: $PGINSTALLATION, $PGBIN, pg_config --bindir, "
        "newest /usr/lib/postgresql/*/bin)",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=int(env("FERROPG_CONFORMANCE_RETRIES") or 1),
        help="run listed tests that did not pass again, up to this many times; one that then "
        "passes is reported as flaky, not as a regression (default %(default)s)",
    )
    p.add_argument(
        "--log-only", action="store_true", help="write pytest's output only to pytest.log"
    )
    return p


def parse_args(argv: Sequence[str]) -> Options:
    """Split *argv* into runner options and pytest arguments.

    Runner options are read up to ``--`` or the first argument that is not one of them;
    that argument and everything after it are pytest's.
    """
    parser = _arg_parser()
    known = {s for a in parser._actions for s in a.option_strings}
    takes_value = {s for a in parser._actions if a.nargs != 0 for s in a.option_strings}
    ours: list[str] = []
    rest = list(argv)
    while rest:
        arg = rest[0]
        if arg == "--":
            rest.pop(0)
            break
        name = arg.split("=", 1)[0]
        if name not in known:
            break
        ours.append(rest.pop(0))
        if name in takes_value and "=" not in arg and rest:
            ours.append(rest.pop(0))
    ns = parser.parse_args(ours)
    opts = Options(**{k: v for k, v in vars(ns).items() if k in Options.__dataclass_fields__})
    opts.pytest_args = rest
    return opts


# --------------------------------------------------------------------------- sdist ---


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/ferropg``, else ``~/.cache/ferropg``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ferropg"


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_hash(path: Path) -> None:
    digest = sha256_of(path)
    if digest != SDIST_SHA256:
        raise RunnerError(
            f"{path}: SHA-256 {digest} is not the one of asyncpg {ASYNCPG_VERSION}'s sdist "
            f"({SDIST_SHA256})"
        )


def download_sdist(dest: Path) -> None:
    """Download the asyncpg sdist with pip (the configured index) to *dest*.

    ``--no-binary asyncpg`` rather than ``--no-binary :all:``: pip prepares the metadata of
    every sdist it downloads (``pip download`` cannot skip that), which needs asyncpg's
    build requirements (setuptools, Cython...); with ``:all:`` those are built from source
    too (minutes), this way they come as wheels (seconds).  ``--no-build-isolation`` does
    not help: it needs them installed in this environment.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=dest.parent) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-binary",
            "asyncpg",
            "--dest",
            tmp,
            f"asyncpg=={ASYNCPG_VERSION}",
        ]
        proc = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr, check=False)
        if proc.returncode != 0:
            raise RunnerError(
                f"pip download failed (status {proc.returncode}); without network access, "
                f"pass --sdist PATH/{SDIST_NAME} or put the file into {dest.parent}"
            )
        found = sorted(Path(tmp).glob(f"asyncpg-{ASYNCPG_VERSION}*.tar.gz"))
        if not found:
            raise RunnerError(f"pip download did not produce {SDIST_NAME}")
        _check_hash(found[0])
        os.replace(found[0], dest)


def fetch_sdist(cache_dir: Path, local: Path | None = None) -> tuple[Path, str]:
    """The hash-checked sdist in *cache_dir* (downloaded or copied from *local* if needed).

    Returns its path and how it was obtained (``cached``, ``copied`` or ``downloaded``).
    """
    path = cache_dir / SDIST_NAME
    if path.is_file():
        try:
            _check_hash(path)
            return path, "cached"
        except RunnerError as e:
            log(f"{e}; fetching it again")
            path.unlink()
    cache_dir.mkdir(parents=True, exist_ok=True)
    if local is not None:
        _check_hash(local)
        tmp = path.with_suffix(".part")
        shutil.copyfile(local, tmp)
        os.replace(tmp, path)
        return path, "copied"
    log(f"downloading the asyncpg {ASYNCPG_VERSION} sdist with pip into {cache_dir}")
    download_sdist(path)
    return path, "downloaded"


def unpack_sdist(sdist: Path, cache_dir: Path) -> Path:
    """Unpack *sdist* into *cache_dir* once; return the source tree."""
    src = cache_dir / f"asyncpg-{ASYNCPG_VERSION}"
    stamp = src / ".sha256"
    if stamp.is_file() and stamp.read_text().strip() == SDIST_SHA256:
        return src
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=cache_dir))
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # Python < 3.11.4: check the member names ourselves
                for member in tar.getmembers():
                    parts = Path(member.name).parts
                    if member.name.startswith("/") or ".." in parts:
                        raise RunnerError(f"{sdist}: unsafe member {member.name!r}")
                    if not (member.isfile() or member.isdir()):
                        raise RunnerError(f"{sdist}: unexpected member {member.name!r}")
                tar.extractall(tmp)
        tree = tmp / f"asyncpg-{ASYNCPG_VERSION}"
        if not (tree / "tests").is_dir() or not (tree / "asyncpg" / "_testbase").is_dir():
            raise RunnerError(f"{sdist} has no tests/ or asyncpg/_testbase/")
        (tree / ".sha256").write_text(SDIST_SHA256 + "\n")
        if src.exists():
            shutil.rmtree(src)
        os.replace(tree, src)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return src


# ----------------------------------------------------------------------- postgres ---


def _has_server(bindir: Path) -> bool:
    return all(os.access(bindir / b, os.X_OK) for b in ("postgres", "pg_ctl"))


def _version_key(path: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", path)]


def find_pg_bindir(explicit: Path | None = None) -> Path:
    """The PostgreSQL bin dir: *explicit*, ``$PGINSTALLATION``, ``$PGBIN``, ``pg_config``,
    else the newest ``/usr/lib/postgresql/*/bin``."""
    for cand in (explicit, os.environ.get("PGINSTALLATION"), os.environ.get("PGBIN")):
        if cand:
            if not _has_server(Path(cand)):
                raise RunnerError(f"no postgres and pg_ctl in {cand}")
            return Path(cand)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            out = ""
        if out and _has_server(Path(out)):
            return Path(out)
    dirs = [d for d in glob.glob("/usr/lib/postgresql/*/bin") if _has_server(Path(d))]
    if dirs:
        return Path(max(dirs, key=_version_key))
    raise RunnerError(
        "no PostgreSQL server binaries found (install them, e.g. `make setup`, or pass "
        "--pg-bindir / set PGINSTALLATION)"
    )


def pg_version(bindir: Path) -> str:
    """The server version line, e.g. ``postgres (PostgreSQL) 15.18 (Debian ...)``."""
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False
    )
    if out.returncode != 0 or "PostgreSQL" not in out.stdout:
        raise RunnerError(f"{bindir}/postgres --version failed: {out.stderr.strip()}")
    return out.stdout.strip()


def pg_major(version_line: str) -> str:
    """Major version from a ``postgres --version`` line (``15``, ``17``...)."""
    m = re.search(r"\(PostgreSQL\)\s+(\d+)", version_line)
    if not m:
        raise RunnerError(f"cannot parse the PostgreSQL version from {version_line!r}")
    return m.group(1)


# ------------------------------------------------------------------------ the run ---


def prepare_run_dir(src: Path, work_parent: Path | None, test_timeout: float = 0) -> Path:
    """A fresh scratch directory with the tests, the harness fallback and the plugin.

    pytest's ``faulthandler_timeout`` (a stack dump of a test that hangs without giving
    the event loop a chance to time it out) is twice *test_timeout*, at least 120 s (900 s
    without a per-test timeout).

    Everything in it is readable by all users and ``tmp/`` (the run's ``TMPDIR``, where the
    clusters' data directories and sockets go) is world-writable, because as root the
    servers run as the ``postgres`` OS user and read the test certificates.
    """
    parent = work_parent or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    run = Path(tempfile.mkdtemp(prefix="ferropg-conformance-", dir=parent))
    os.chmod(run, 0o755)
    shutil.copytree(src / "tests", run / "tests")
    shutil.copytree(src / "asyncpg" / "_testbase", run / "harness" / "asyncpg" / "_testbase")
    (run / "plugin").mkdir()
    shutil.copyfile(PLUGIN_FILE, run / "plugin" / "alias_plugin.py")
    for root, dirs, files in os.walk(run):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    (run / "tmp").mkdir()
    os.chmod(run / "tmp", 0o1777)
    (run / "pytest.ini").write_text(
        "[pytest]\n"
        f"addopts = {PYTEST_ADDOPTS}\n"
        "testpaths = tests\n"
        "filterwarnings = default\n"
        f"faulthandler_timeout = {max(2 * test_timeout, 120) if test_timeout > 0 else 900:g}\n"
    )
    if len(str(run)) > 70:
        log(f"warning: long run directory {run}; unix socket paths may get too long")
    return run


def netns_usable(mode: str) -> bool:
    """Whether to run pytest in a private network namespace (see ``--netns``)."""
    if mode == "no":
        return False
    ok = (
        os.geteuid() == 0
        and shutil.which("unshare") is not None
        and shutil.which("ip") is not None
        and subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0
    )
    if mode == "yes" and not ok:
        raise RunnerError("--netns yes needs root, `unshare --net` and `ip`")
    return ok


def suite_env(run: Path, opts: Options, bindir: Path, major: str, out: Path) -> dict[str, str]:
    """The environment of the pytest run."""
    env = {
        k: v
        for k, v in os.environ.items()
        # PGHOST etc. would switch asyncpg's harness to an already running server;
        # ASYNCPG_VERSION enables a test comparing it with the target's __version__.
        if not k.startswith("PG")
        and k not in ("ASYNCPG_VERSION", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")
    }
    pythonpath = [str(run / "plugin")]
    if os.environ.get("PYTHONPATH"):
        pythonpath.append(os.environ["PYTHONPATH"])
    env.update(
        PGINSTALLATION=str(bindir),
        PGVERSION=major,
        TMPDIR=str(run / "tmp"),
        PYTHONPATH=os.pathsep.join(pythonpath),
        PYTHONDONTWRITEBYTECODE="1",
        FERROPG_CONFORMANCE_TARGET=opts.target,
        FERROPG_CONFORMANCE_FALLBACK_DIR=str(run / "harness"),
        FERROPG_CONFORMANCE_RESULTS=str(out / "results.tsv"),
        FERROPG_CONFORMANCE_INFO=str(out / "info.json"),
        FERROPG_CONFORMANCE_TEST_TIMEOUT=f"{opts.test_timeout:g}",
    )
    return env


_CHECK_IMPORTS = """
import importlib, json, sys
import alias_plugin
import pytest
m = importlib.import_module(sys.argv[1])
import asyncpg, asyncpg.cluster
try:
    import distro
except ImportError:
    distro = None
print(json.dumps({"version": getattr(m, "__version__", "?"), "file": m.__file__,
                  "pytest": pytest.__version__, "distro": distro is not None}))
"""


def check_imports(env: dict[str, str], target: str) -> dict[str, object]:
    """Import the target (as asyncpg, through the plugin) and the suite's third-party needs."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHECK_IMPORTS, target],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RunnerError(
            f"cannot import {target} as asyncpg with {sys.executable}:\n{proc.stderr.strip()}"
        )
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    if not info["distro"]:
        raise RunnerError(f"{sys.executable} lacks `distro` (test_connect.py imports it)")
    return info


def _pump(fd: int, log_file: Path, echo: bool) -> None:
    with open(log_file, "wb") as f:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            f.write(chunk)
            f.flush()
            if echo:
                try:
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.buffer.flush()
                except (OSError, ValueError):  # e.g. a closed pipe: keep draining pytest
                    echo = False


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def run_pytest(
    cmd: list[str], env: dict[str, str], cwd: Path, log_file: Path, timeout: float, echo: bool
) -> tuple[int, bool]:
    """Run *cmd* in its own process group; tee its output to *log_file*.

    After *timeout* seconds (or on Ctrl-C) pytest gets SIGINT, 60 s later SIGKILL.
    Returns the exit status and whether the whole-run timeout was hit.
    """
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    pump = threading.Thread(target=_pump, args=(proc.stdout.fileno(), log_file, echo), daemon=True)
    pump.start()
    timed_out = False
    try:
        try:
            proc.wait(timeout=timeout if timeout > 0 else None)
        except subprocess.TimeoutExpired:
            timed_out = True
            log(f"the suite is still running after {timeout:g} s: interrupting it")
            _signal_group(proc, signal.SIGINT)
        except KeyboardInterrupt:
            _signal_group(proc, signal.SIGINT)
            raise
        finally:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
    finally:
        # A process started by the suite may still hold the pipe; do not wait for it long.
        pump.join(timeout=30)
        if not pump.is_alive():
            proc.stdout.close()
    return proc.returncode, timed_out


def stop_leftover_servers(run: Path) -> None:
    """Stop (SIGQUIT: immediate shutdown) any postmaster whose data dir is under *run*."""
    pids = []
    for pidfile in glob.glob(str(run / "tmp" / "**" / "postmaster.pid"), recursive=True):
        try:
            pid = int(Path(pidfile).read_text().split("\n", 1)[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if b"postgres" in cmdline:
            log(f"stopping leftover PostgreSQL server {pid} in {os.path.dirname(pidfile)}")
            try:
                os.kill(pid, signal.SIGQUIT)
                pids.append(pid)
            except OSError:
                pass
    deadline = time.monotonic() + 10
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if os.path.exists(f"/proc/{p}")]
        time.sleep(0.1)


# -------------------------------------------------------------------- the results ---


@dataclasses.dataclass
class Result:
    """One line of ``results.tsv``."""

    outcome: str
    seconds: float
    message: str


def load_results(path: Path) -> dict[str, Result]:
    """Read ``results.tsv``; a test reported twice keeps its last result."""
    results: dict[str, Result] = {}
    if not path.is_file():
        return results
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        seconds = float(parts[2]) if len(parts) > 2 and parts[2] else 0.0
        results[parts[0]] = Result(parts[1], seconds, parts[3] if len(parts) > 3 else "")
    return results


def summary_line(target: str, results: dict[str, Result], wall: float, rc: int) -> str:
    """The ``SUMMARY target=.. total=N passed=.. failed=.. skipped=.. errors=.. xfailed=..
    xpassed=.. wall=..s pytest_rc=..`` line (*wall*: seconds of the pytest run)."""
    n = Counter(r.outcome for r in results.values())
    return (
        f"SUMMARY target={target} total={len(results)} passed={n['passed']} "
        f"failed={n['failed']} skipped={n['skipped']} errors={n['error']} "
        f"xfailed={n['xfailed']} xpassed={n['xpassed']} wall={wall:.0f}s pytest_rc={rc}"
    )


def load_expected(path: Path) -> list[str]:
    """The nodeids of the ratchet file (comments and blank lines skipped)."""
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def write_expected(path: Path, nodeids: Iterable[str]) -> None:
    """Write the ratchet file: the header and the sorted nodeids."""
    body = "".join(f"{n}\n" for n in sorted(set(nodeids)))
    path.write_text(EXPECTED_HEADER + body, encoding="utf-8")


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


@dataclasses.dataclass
class Ratchet:
    """The comparison of a run with the ratchet file."""

    #: Listed tests that did not pass: (nodeid, outcome or ``missing``, message).
    regressions: list[tuple[str, str, str]]
    #: Listed tests that failed at first but passed when run again: (nodeid, first outcome,
    #: message).
    flaky: list[tuple[str, str, str]]
    #: Passing tests that are not listed.
    newly_passing: list[str]
    #: Listed tests outside a narrowed-down run.
    not_run: int
    #: The passing set, as ``--update`` would write it.
    updated: list[str]


def compare(
    expected: Sequence[str],
    results: dict[str, Result],
    partial: bool,
    passed_on_retry: Iterable[str] = (),
) -> Ratchet:
    """Compare *results* with the *expected* passing tests.

    In a full run every listed test must pass (a test without a result, e.g. because its
    module failed to import, counts as ``missing``).  In a *partial* run (pytest arguments
    given) only listed tests that ran, and those in modules that failed to import, count.
    Listed tests in *passed_on_retry* are reported as flaky, not as regressions.
    """
    broken_files = {_file_of(n) for n in results if n.endswith("::<COLLECTION>")}
    passing = {n for n, r in results.items() if r.outcome == "passed"}
    retried = set(passed_on_retry)
    regressions, flaky = [], []
    not_run = 0
    for nodeid in expected:
        res = results.get(nodeid)
        if res is not None and res.outcome == "passed":
            continue
        if res is None and _file_of(nodeid) in broken_files:
            coll = results[_file_of(nodeid) + "::<COLLECTION>"]
            regressions.append((nodeid, "error", "module not collected: " + coll.message))
        elif res is None and partial:
            not_run += 1
        elif res is None:
            regressions.append((nodeid, "missing", "no result"))
        elif nodeid in retried:
            flaky.append((nodeid, res.outcome, res.message))
        else:
            regressions.append((nodeid, res.outcome, res.message))
    listed = set(expected)
    newly = sorted(passing - listed)
    updated = passing | (retried & listed)
    if partial:
        updated |= {n for n in listed if n not in results and _file_of(n) not in broken_files}
    return Ratchet(regressions, flaky, newly, not_run, sorted(updated))


def ratchet_report(r: Ratchet, expected_file: Path, n_expected: int) -> list[str]:
    """Human-readable lines describing *r*."""
    try:
        shown = expected_file.resolve().relative_to(REPO_ROOT)
    except ValueError:
        shown = expected_file
    lines = []
    if r.regressions:
        lines.append(
            f"== {len(r.regressions)} test(s) listed in {shown} did not pass "
            "(outcome, nodeid, message):"
        )
        lines += [f"  {o:8s} {n}  {m[:160]}" for n, o, m in r.regressions]
    if r.flaky:
        lines.append(
            f"== {len(r.flaky)} listed test(s) did not pass at first but passed when run "
            "again (flaky; first outcome, nodeid, message):"
        )
        lines += [f"  {o:8s} {n}  {m[:160]}" for n, o, m in r.flaky]
    if r.newly_passing:
        lines.append(
            f"== {len(r.newly_passing)} test(s) pass but are not listed in {shown} "
            "(`scripts/conformance.sh --update` adds them):"
        )
        lines += [f"  {n}" for n in r.newly_passing]
    if r.not_run:
        lines.append(f"== {r.not_run} listed test(s) not part of this run")
    ok = "FAILED" if r.regressions else "ok"
    lines.append(
        f"RATCHET {ok}: expected={n_expected} regressions={len(r.regressions)} "
        f"flaky={len(r.flaky)} newly_passing={len(r.newly_passing)}"
    )
    return lines


# ------------------------------------------------------------------------- main ---


def _describe_env(items: dict[str, object]) -> str:
    return "".join(f"{k}: {v}\n" for k, v in items.items())


def _pytest_cmd(run_dir: Path, args: Sequence[str], junit: Path | None, netns: bool) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "-c", str(run_dir / "pytest.ini")]
    cmd += ["--rootdir", str(run_dir), "-p", "alias_plugin"]
    if junit is not None:
        cmd += ["--junitxml", str(junit), "-o", "junit_family=xunit2"]
    cmd += args
    return [*NETNS_WRAPPER, *cmd] if netns else cmd


def _retry_candidates(expected: Sequence[str], results: dict[str, Result]) -> list[str]:
    """Listed tests that ran and did not pass (not those whose module failed to import)."""
    return [n for n in expected if n in results and results[n].outcome != "passed"]


def run(opts: Options) -> int:
    """Fetch, run, summarise and apply the ratchet; return the exit status."""
    t_start = time.monotonic()
    cache_dir = (opts.cache_dir or default_cache_dir()).expanduser().resolve()
    out = (opts.out_dir or REPO_ROOT / "build" / "conformance").expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    for pattern in OUTPUT_FILES:
        for old in out.glob(pattern):
            old.unlink()
    ratchet = opts.target == "ferropg" or opts.expected != EXPECTED_FILE
    expected = load_expected(opts.expected) if ratchet else []

    sdist, how = fetch_sdist(cache_dir, opts.sdist)
    src = unpack_sdist(sdist, cache_dir)
    t_sdist = time.monotonic()
    log(f"asyncpg {ASYNCPG_VERSION} sdist {how} ({t_sdist - t_start:.1f} s): {sdist}")

    bindir = find_pg_bindir(opts.pg_bindir)
    version = pg_version(bindir)
    major = pg_major(version)
    use_netns = netns_usable(opts.netns)
    run_dir = prepare_run_dir(src, opts.work_dir, opts.test_timeout)
    retried: set[str] = set()
    t_retry = 0.0
    try:
        env = suite_env(run_dir, opts, bindir, major, out)
        info = check_imports(env, opts.target)
        described = _describe_env(
            {
                "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "target": f"{opts.target} {info['version']} ({info['file']})",
                "python": f"{sys.executable} ({sys.version.split()[0]}, pytest {info['pytest']})",
                "sdist": f"{sdist} (sha256 {SDIST_SHA256})",
                "pg_bindir": f"{bindir} ({version})",
                "run_dir": run_dir,
                "uid": os.geteuid(),
                "netns": int(use_netns),
                "nproc": os.cpu_count(),
                "test_timeout": f"{opts.test_timeout:g} s",
                "suite_timeout": f"{opts.suite_timeout:g} s",
                "retries": opts.retries,
                "pytest_args": " ".join(opts.pytest_args),
            }
        )
        (out / "env.txt").write_text(described)
        sys.stderr.write(described)
        t_setup = time.monotonic()
        cmd = _pytest_cmd(run_dir, opts.pytest_args, out / "junit.xml", use_netns)
        rc, timed_out = run_pytest(
            cmd, env, run_dir, out / "pytest.log", opts.suite_timeout, not opts.log_only
        )
        t_pytest = time.monotonic()
        stop_leftover_servers(run_dir)
        results = load_results(out / "results.tsv")

        # Listed tests that failed get another chance, each retry in a fresh pytest process
        # (and a fresh cluster), within what is left of --suite-timeout.
        again = _retry_candidates(expected, results) if rc in PYTEST_RAN else []
        for attempt in range(1, opts.retries + 1):
            left = opts.suite_timeout - (time.monotonic() - t_setup)
            if not again or (opts.suite_timeout > 0 and left < 30):
                break
            log(f"retry {attempt}: {len(again)} listed test(s) that did not pass")
            retry_env = dict(env, FERROPG_CONFORMANCE_RESULTS=str(out / f"retry-{attempt}.tsv"))
            cmd = _pytest_cmd(run_dir, again, None, use_netns)
            run_pytest(
                cmd, retry_env, run_dir, out / f"retry-{attempt}.log", left, not opts.log_only
            )
            stop_leftover_servers(run_dir)
            second = load_results(out / f"retry-{attempt}.tsv")
            retried |= {n for n in again if n in second and second[n].outcome == "passed"}
            again = [n for n in again if n not in retried]
        t_retry = time.monotonic() - t_pytest
    finally:
        stop_leftover_servers(run_dir)
        if opts.keep_work:
            log(f"kept the run directory {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)

    summary = summary_line(opts.target, results, t_pytest - t_setup, rc)
    (out / "summary.txt").write_text(summary + "\n")
    try:
        extra = json.loads((out / "info.json").read_text())
        log(
            f"harness modules from the sdist: {', '.join(extra['fallback_modules_used']) or '-'}"
            f"; per-test timeout: {extra['timeout_mode']}"
        )
    except (OSError, ValueError, KeyError):
        pass
    log(
        f"timings: sdist {t_sdist - t_start:.1f} s ({how}), setup {t_setup - t_sdist:.1f} s, "
        f"pytest {t_pytest - t_setup:.1f} s, retries {t_retry:.1f} s, "
        f"total {time.monotonic() - t_start:.1f} s"
    )
    log(f"results: {out}")
    print(summary, flush=True)

    problem = None
    if timed_out:
        problem = f"the whole run exceeded --suite-timeout={opts.suite_timeout:g} s"
    elif rc not in PYTEST_RAN:
        problem = f"pytest exited with status {rc}; see {out / 'pytest.log'}"

    if not ratchet:
        log(f"target {opts.target}: no ratchet (expected-pass.txt is ferropg's)")
        if problem:
            raise RunnerError(problem)
        return 0
    r = compare(expected, results, partial=bool(opts.pytest_args), passed_on_retry=retried)
    if opts.update:
        if problem:
            raise RunnerError(problem + f"; not updating {opts.expected}")
        write_expected(opts.expected, r.updated)
        log(
            f"wrote {opts.expected}: {len(r.updated)} tests (was {len(expected)}; "
            f"{len(r.newly_passing)} added, {len(r.regressions)} removed)"
        )
        return 0
    report = ratchet_report(r, opts.expected, len(expected))
    if r.regressions:
        report.insert(-1, f"(pytest's output, with the tracebacks: {out / 'pytest.log'})")
    (out / "ratchet.txt").write_text("\n".join(report) + "\n")
    print("\n".join(report), flush=True)
    if problem:
        raise RunnerError(problem)
    return 1 if r.regressions else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: see the module docstring."""
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(opts)
    except RunnerError as e:
        log(f"ERROR: {e}")
        return 2
    except KeyboardInterrupt:
        log("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())

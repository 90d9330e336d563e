"""Temporary PostgreSQL servers for tests and demos.

This module runs throw-away PostgreSQL clusters from the server binaries installed on the
machine.  It needs nothing but the standard library and the PostgreSQL binaries, so it works
before (and independently of) the ferropg driver itself::

    from ferropg.cluster import TempCluster

    with TempCluster() as cluster:          # initdb + start; stop + remove on exit
        print(cluster.dsn())                # postgresql://postgres@127.0.0.1:PORT/postgres
        cluster.sql("CREATE ROLE alice LOGIN PASSWORD 'secret'")
        cluster.reset_hba()
        cluster.add_hba_entry(type='local', auth_method='trust')
        cluster.add_hba_entry(type='host', user='alice', auth_method='scram-sha-256')
        cluster.reload()

``python -m ferropg.cluster`` starts a cluster, prints its DSN and waits for Ctrl-C.

Finding the binaries (:func:`find_bindir`): ``$PGINSTALLATION``, then ``$PGBIN`` (a bin
directory, or an installation prefix with a ``bin/``), then ``pg_config --bindir`` (only if
that directory holds ``postgres`` and ``initdb``), then the newest
``/usr/lib/postgresql/*/bin`` (Debian/Ubuntu layout).

Running as root: PostgreSQL refuses to run as root, so when ``os.geteuid() == 0`` the data
directory and the private socket directory are handed to the ``postgres`` OS user and
``initdb``/``pg_ctl``/``postgres``/``pg_basebackup``/``pg_resetwal`` run as that user through
``setpriv --reuid --regid --init-groups`` (or ``runuser -u``).  ``psql`` stays a root client.
If the ``postgres`` binary in the bin directory is a script rather than an executable (for
example the privilege-dropping wrappers of the asyncpg conformance runner), it is trusted to
drop privileges itself and is run as is.  ``$FERROPG_PG_OS_USER`` overrides the user name
(empty: never switch users).

Clean-up: every started server gets a tiny ``sh`` watchdog that stops it (``pg_ctl stop -m
immediate``) and removes the temporary directories once the Python process is gone, even if
it was killed with SIGKILL; an :mod:`atexit` hook does the same on a normal exit.

The module is also a drop-in for ``asyncpg.cluster`` (the API asyncpg's own test harness
uses: :class:`Cluster`, :class:`TempCluster`, :class:`HotStandbyCluster`,
:class:`RunningCluster`, :func:`find_available_port`, ``get_status()``, ``init(**initdb)``,
``start(port='dynamic', server_settings=...)``, ``get_connection_spec()``,
``trust_local_connections()``, ``reset_wal()``, ``connect()``...), so that asyncpg's test suite
can run with ``asyncpg.cluster`` aliased to this module.
"""

from __future__ import annotations

import os
import sys

# Run as a script, its own folder (python/ferropg) leads sys.path, and our types.py would
# shadow the standard library's: take that folder off before importing anything else.
if __name__ == "__main__" and sys.path and sys.path[0]:
    if os.path.realpath(sys.path[0]) == os.path.dirname(os.path.realpath(__file__)):
        del sys.path[0]

import argparse
import atexit
import glob
import importlib
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, TypeVar

__all__ = [
    "Cluster",
    "ClusterError",
    "HotStandbyCluster",
    "RunningCluster",
    "TempCluster",
    "find_available_port",
    "find_bindir",
]

#: Directories searched (after ``$PATH``) for ``setpriv``/``runuser``/``pg_config``.
_SYSTEM_PATH = os.pathsep.join(
    ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
)

#: Longest unix socket path the kernel accepts (``sun_path`` is 108 bytes incl. the NUL).
_MAX_SOCKET_PATH = 107

#: Server settings every cluster gets unless the caller overrides them.
_DEFAULT_SERVER_SETTINGS = {
    # TCP on the loopback only (127.0.0.1, and ::1 where IPv6 is available).
    "listen_addresses": "localhost",
    # A throw-away cluster does not need durable commits; this makes tests much faster.
    "fsync": "off",
}

_VALID_HBA_TYPES = frozenset(
    {"local", "host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc"}
)


class ClusterError(Exception):
    """A PostgreSQL cluster could not be found, initialised, started, stopped or queried."""


class _ServerVersion(NamedTuple):
    """Server version tuple, field-compatible with ``asyncpg.types.ServerVersion``."""

    major: int
    minor: int
    micro: int
    releaselevel: str
    serial: int


# --------------------------------------------------------------------------- helpers ---


def _which(name: str) -> str | None:
    """Find *name* on ``$PATH`` or in the usual system directories."""
    path = os.environ.get("PATH", "")
    return shutil.which(name, path=path + os.pathsep + _SYSTEM_PATH if path else _SYSTEM_PATH)


def _is_exe(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _is_script(path: str) -> bool:
    """Whether *path* is an interpreter script (``#!``) rather than a native executable."""
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return False


def _has_server(bindir: str, *, need_initdb: bool = True) -> bool:
    names = ["postgres", "pg_ctl"] + (["initdb"] if need_initdb else [])
    return all(_is_exe(os.path.join(bindir, n)) for n in names)


def _pg_config_bindir(pg_config: str) -> str | None:
    try:
        out = _run_captured([pg_config, "--bindir"], timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    bindir = out.stdout.strip()
    return bindir if out.returncode == 0 and bindir else None


def _version_key(path: str) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<version>/bin`` directories."""
    version = os.path.basename(os.path.dirname(path))
    return tuple(int(p) for p in re.findall(r"\d+", version)) or (0,)


def find_bindir(pg_config_path: str | None = None) -> str:
    """Return the directory holding the PostgreSQL server binaries.

    Order: ``$PGINSTALLATION``, ``$PGBIN`` (each a bin directory or a prefix with ``bin/``;
    a set but unusable value is an error rather than silently ignored), then
    ``pg_config --bindir`` (*pg_config_path* if given, else ``pg_config`` on ``$PATH``; used
    only if the directory has ``postgres`` and ``initdb``), then the newest
    ``/usr/lib/postgresql/*/bin``.  Raises :class:`ClusterError` if nothing is found.
    """
    for var in ("PGINSTALLATION", "PGBIN"):
        value = os.environ.get(var)
        if not value:
            continue
        for candidate in (value, os.path.join(value, "bin")):
            if _has_server(candidate, need_initdb=False):
                return os.path.abspath(candidate)
        raise ClusterError(
            f"${var} is set to {value!r}, but neither it nor its bin/ subdirectory contains "
            f"the postgres and pg_ctl executables"
        )

    pg_config = pg_config_path or _which("pg_config")
    if pg_config:
        bindir = _pg_config_bindir(pg_config)
        if bindir and _has_server(bindir):
            return bindir
        if pg_config_path:
            raise ClusterError(
                f"{pg_config_path} --bindir did not name a directory with "
                f"the postgres, pg_ctl and initdb executables"
            )

    candidates = [d for d in glob.glob("/usr/lib/postgresql/*/bin") if _has_server(d)]
    if candidates:
        return max(candidates, key=_version_key)

    raise ClusterError(
        "could not find the PostgreSQL server binaries (postgres, initdb, pg_ctl): set "
        "$PGBIN to their directory, put pg_config on $PATH, or install the server "
        "(scripts/setup.sh does that on Debian)"
    )


def _find_psql(bindir: str) -> str | None:
    """Find a ``psql`` client, preferring the one that belongs to *bindir*."""
    candidates = [os.path.join(bindir, "psql")]
    pg_config = _which("pg_config")
    if pg_config:
        other = _pg_config_bindir(pg_config)
        if other:
            candidates.append(os.path.join(other, "psql"))
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin/psql"), key=_version_key, reverse=True
    )
    for c in candidates:
        if _is_exe(c):
            return c
    return _which("psql")


def find_available_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (the OS picks it).

    Another process may grab it before the server binds it; :meth:`Cluster.start` retries
    with a new port when that happens.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _parse_version(text: str) -> Any:
    """Parse ``postgres (PostgreSQL) 15.18 (Debian ...)`` / ``16beta2`` into a version tuple.

    Follows asyncpg's convention: for PostgreSQL >= 10, ``15.18`` is ``(15, 0, 18, ...)``.
    The tuple is an ``asyncpg``-style ``ServerVersion`` (this package's ``types.ServerVersion``
    when available).
    """
    m = re.search(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?([a-z]+)?(\d+)?", text.split(")", 1)[-1])
    if not m:
        raise ClusterError(f"could not parse a PostgreSQL version from {text!r}")
    major = int(m.group(1))
    second, third = int(m.group(2) or 0), int(m.group(3) or 0)
    level, serial = m.group(4) or "final", int(m.group(5) or 0)
    if major >= 10:
        second, third = 0, second
    cls: Any = _ServerVersion
    if __package__:
        try:
            cls = importlib.import_module(".types", __package__).ServerVersion
        except (ImportError, AttributeError):
            cls = _ServerVersion
    return cls(major, second, third, level, serial)


def _clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without libpq/PostgreSQL ``PG*`` variables, plus *extra*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(extra or {})
    return env


def _run_captured(
    argv: list[str], *, timeout: float | None, env: dict[str, str] | None = None, **more: Any
) -> subprocess.CompletedProcess[str]:
    """Runs ``argv`` to its end, its output captured as text; the exit status is the
    caller's to judge.  ``env`` defaults to this environment without ``PG*`` variables."""
    if env is None:
        env = _clean_env()
    return subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=timeout, env=env, **more
    )


def _pid_alive(pid: int) -> bool:
    """Whether process *pid* exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


def _short_tmpdir(need_world_access: bool) -> str:
    """A temporary directory short enough for unix socket paths.

    ``tempfile.gettempdir()`` is used when it is short (and, when the server runs as another
    OS user, reachable by it); otherwise ``/tmp``.
    """
    tmp = tempfile.gettempdir()
    if len(tmp) > 60:
        return "/tmp"
    if need_world_access:
        path = os.path.abspath(tmp)
        while True:
            try:
                if not os.stat(path).st_mode & 0o001:
                    return "/tmp"
            except OSError:
                return "/tmp"
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent
    return tmp


def _hba_quote(value: str) -> str:
    if value and re.fullmatch(r"[A-Za-z0-9_.,:/@+*=-]+", value):
        return value
    return '"' + value.replace('"', '""') + '"'


def _conninfo_quote(value: Any) -> str:
    value = str(value)
    if value and re.fullmatch(r"[A-Za-z0-9_./:@+-]+", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _setting_value(value: Any) -> str:
    if value is True:
        return "on"
    if value is False:
        return "off"
    return str(value)


# ------------------------------------------------------------------ clean-up registry ---

_live_lock = threading.Lock()
_live: dict[int, Cluster] = {}

# Runs once the Python process is gone: stop the server, remove the listed directories.
_WATCHDOG_SCRIPT = """
pid=$1; shift
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
eval "$FPG_STOP_CMD" >/dev/null 2>&1
if [ $# -gt 0 ]; then rm -rf -- "$@"; fi
"""


def _register(cluster: Cluster) -> None:
    with _live_lock:
        _live[id(cluster)] = cluster


def _unregister(cluster: Cluster) -> None:
    with _live_lock:
        _live.pop(id(cluster), None)


@atexit.register
def _cleanup_at_exit() -> None:
    with _live_lock:
        clusters = list(_live.values())
    for cluster in clusters:
        try:
            cluster._cleanup_at_exit()
        except (ClusterError, OSError, subprocess.SubprocessError) as e:  # pragma: no cover
            print(f"ferropg.cluster: clean-up of {cluster._data_dir} failed: {e}", file=sys.stderr)


# ------------------------------------------------------------------------- Cluster ----

_C = TypeVar("_C", bound="Cluster")


class Cluster:
    """A PostgreSQL cluster in *data_dir*, run from the server binaries of this machine.

    *data_dir* may be missing or empty (then :meth:`init` creates the cluster) or hold an
    existing cluster.  :meth:`destroy` removes *data_dir*.

    *port*: TCP port to use; ``None`` or ``'dynamic'`` picks a free one at :meth:`start`.
    *auth*: authentication method for TCP (``host``) lines in the ``pg_hba.conf`` written by
    :meth:`init`; unix-socket (``local``) connections are always ``trust`` so :meth:`sql`
    works.  A password method needs *password* (the ``postgres`` superuser's password,
    set by initdb).  *server_settings*: ``postgresql.conf`` settings passed on every start
    (``-c name=value``), on top of this module's defaults (``listen_addresses='localhost'``,
    ``fsync=off``) and below the ones given to :meth:`start`.  *pg_config_path*: use this
    ``pg_config`` to locate the binaries instead of :func:`find_bindir`'s search.
    """

    #: TCP address used by :meth:`dsn` and :meth:`connection_kwargs`.
    host = "127.0.0.1"

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        port: int | str | None = None,
        auth: str = "trust",
        server_settings: Mapping[str, Any] | None = None,
        password: str | None = None,
        pg_config_path: str | None = None,
    ) -> None:
        self._data_dir = os.path.abspath(os.fspath(data_dir))
        self._pg_config_path = pg_config_path
        self._port: int | None = None if port in (None, "dynamic") else int(port)
        self._auth = auth
        self._password = password
        self._server_settings = dict(server_settings or {})
        self._user = "postgres"
        self._database = "postgres"
        self._bindir: str | None = None
        self._pg_version: Any = None
        self._run_as: list[str] = []
        self._owner: pwd.struct_passwd | None = None
        self._rundir: str | None = None
        self._owned_dirs: list[str] = []
        self._socket_dir: str | None = None
        self._log_file: str | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._started_here = False
        self._connection_addr: dict[str, Any] | None = None
        self._connection_spec_override: dict[str, Any] | None = None

    # ------------------------------------------------------------- environment ----

    def _init_env(self) -> None:
        """Locate the binaries and decide which OS user runs them (done once, lazily)."""
        if self._bindir is not None:
            return
        bindir = find_bindir(self._pg_config_path)
        postgres = os.path.join(bindir, "postgres")
        self._pg_version = self._read_version(postgres)

        user = os.environ.get("FERROPG_PG_OS_USER")
        run_as: list[str] = []
        owner = None
        if os.geteuid() == 0 or user:
            name = user if user is not None else "postgres"
            if name:
                try:
                    owner = pwd.getpwnam(name)
                except KeyError:
                    raise ClusterError(
                        f"PostgreSQL cannot run as root and there is no OS user {name!r} to "
                        f"run it as (create it, e.g. `useradd --system postgres`, or run "
                        f"scripts/setup.sh)"
                    ) from None
            if owner is not None and owner.pw_uid != os.geteuid() and not _is_script(postgres):
                run_as = self._privilege_drop_command(owner)
        self._run_as = run_as
        self._owner = owner if owner is not None and owner.pw_uid != os.geteuid() else None
        self._bindir = bindir

    @staticmethod
    def _privilege_drop_command(owner: pwd.struct_passwd) -> list[str]:
        setpriv = _which("setpriv")
        if setpriv:
            return [
                setpriv,
                f"--reuid={owner.pw_uid}",
                f"--regid={owner.pw_gid}",
                "--init-groups",
                "--",
            ]
        runuser = _which("runuser")
        if runuser:
            return [runuser, "-u", owner.pw_name, "--"]
        raise ClusterError(
            "running as root, but neither setpriv nor runuser is available to "
            f"run PostgreSQL as {owner.pw_name!r}"
        )

    @staticmethod
    def _read_version(postgres: str) -> Any:
        try:
            out = _run_captured([postgres, "--version"], timeout=30)
        except (OSError, subprocess.SubprocessError) as e:
            raise ClusterError(f"cannot run {postgres} --version: {e}") from e
        if out.returncode != 0:
            raise ClusterError(
                f"{postgres} --version exited with status {out.returncode}: {out.stderr.strip()}"
            )
        return _parse_version(out.stdout.strip())

    def _binary(self, name: str) -> str:
        self._init_env()
        assert self._bindir is not None
        path = os.path.join(self._bindir, name)
        if not _is_exe(path):
            raise ClusterError(f"could not find the {name} executable in {self._bindir}")
        return path

    def _run_server_tool(
        self,
        args: list[str],
        *,
        timeout: float | None = None,
        check: bool = True,
        what: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a server-side tool (initdb, pg_ctl, ...) as the server's OS user."""
        self._init_env()
        env = _clean_env({"LC_MESSAGES": "C"})
        if self._owner is not None:
            env["HOME"] = self._owner.pw_dir
        cwd = self._data_dir if os.path.isdir(self._data_dir) else None
        if self._owner is not None:
            cwd = self._ensure_rundir()
        try:
            proc = _run_captured(
                self._run_as + args, timeout=timeout, env=env, cwd=cwd, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as e:
            raise ClusterError(
                f"{what or os.path.basename(args[0])} timed out after {timeout}s"
            ) from e
        except OSError as e:
            raise ClusterError(f"cannot run {args[0]}: {e}") from e
        if check and proc.returncode != 0:
            output = (proc.stdout + proc.stderr).strip()
            raise ClusterError(
                f"{what or os.path.basename(args[0])} exited with status "
                f"{proc.returncode}:\n{output}"
            )
        return proc

    def _give_to_owner(self, path: str) -> None:
        """chown *path* (not recursively) to the server's OS user when we are root."""
        if self._owner is not None:
            os.chown(path, self._owner.pw_uid, self._owner.pw_gid)

    def _ensure_rundir(self) -> str:
        """The private directory holding the unix socket and the server log."""
        if self._rundir is None:
            self._init_env()
            parent = _short_tmpdir(self._owner is not None)
            rundir = tempfile.mkdtemp(prefix="fpg", dir=parent)
            self._owned_dirs.append(rundir)
            _register(self)
            self._give_to_owner(rundir)
            self._rundir = rundir
        return self._rundir

    # ------------------------------------------------------------------ accessors ----

    @property
    def data_dir(self) -> str:
        """The cluster's data directory."""
        return self._data_dir

    @property
    def port(self) -> int | None:
        """The TCP port (``None`` until a dynamic port was picked by :meth:`start`)."""
        return self._port

    @property
    def socket_dir(self) -> str:
        """Directory of the server's unix socket (``.s.PGSQL.<port>``)."""
        if self._socket_dir is not None:
            return self._socket_dir
        return self._ensure_rundir()

    @property
    def log_file(self) -> str:
        """The server log written by ``pg_ctl -l``."""
        if self._log_file is None:
            self._log_file = os.path.join(self._ensure_rundir(), "postgres.log")
        return self._log_file

    @property
    def bindir(self) -> str:
        """Directory of the PostgreSQL binaries in use."""
        self._init_env()
        assert self._bindir is not None
        return self._bindir

    @property
    def server_version(self) -> str:
        """Server version as text, e.g. ``'15.18'`` (from ``postgres --version``)."""
        v = self.get_pg_version()
        text = f"{v.major}.{v.micro}" if v.major >= 10 else f"{v.major}.{v.minor}.{v.micro}"
        if v.releaselevel != "final":
            text = f"{v.major}{v.releaselevel}{v.serial or ''}"
        return text

    @property
    def user(self) -> str:
        """The bootstrap superuser (``postgres``)."""
        return self._user

    @property
    def database(self) -> str:
        """The default database (``postgres``)."""
        return self._database

    def get_pg_version(self) -> Any:
        """Server version tuple ``(major, minor, micro, releaselevel, serial)``."""
        self._init_env()
        return self._pg_version

    def is_managed(self) -> bool:
        """Always true: this object controls the server (see :class:`RunningCluster`)."""
        return True

    def get_data_dir(self) -> str:
        """The cluster's data directory (asyncpg API)."""
        return self._data_dir

    def dsn(
        self, user: str | None = None, password: str | None = None, database: str | None = None
    ) -> str:
        """A ``postgresql://`` URI for a TCP connection to 127.0.0.1 on :attr:`port`."""
        self._require_port()
        user = user or self._user
        if password is None and user == self._user:
            password = self._password
        q = urllib.parse.quote
        auth = q(user, safe="")
        if password is not None:
            auth += ":" + q(password, safe="")
        return f"postgresql://{auth}@{self.host}:{self._port}/{q(database or self._database)}"

    def connection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``connect()``: TCP host, port, user, database (+password)."""
        self._require_port()
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self._port,
            "user": self._user,
            "database": self._database,
        }
        if self._password is not None:
            kwargs["password"] = self._password
        return kwargs

    def _require_port(self) -> None:
        if self._port is None:
            raise ClusterError("the cluster has no port yet: start() it first")

    # --------------------------------------------------------------------- status ----

    def _read_pidfile(self) -> list[str] | None:
        try:
            with open(os.path.join(self._data_dir, "postmaster.pid")) as f:
                return f.read().splitlines()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _postmaster_pid(self) -> int | None:
        lines = self._read_pidfile()
        try:
            return int(lines[0]) if lines else None
        except ValueError:
            return None

    def get_status(self) -> str:
        """``'not-initialized'``, ``'stopped'`` or ``'running'``."""
        if not os.path.isfile(os.path.join(self._data_dir, "PG_VERSION")):
            return "not-initialized"
        pid = self._postmaster_pid()
        if pid is not None and _pid_alive(pid):
            return "running"
        return "stopped"

    # ------------------------------------------------------------ init/start/stop ----

    def init(self, **settings: Any) -> str:
        """Create the cluster with initdb; returns initdb's output.

        Defaults: ``--username=postgres --encoding=UTF8 --locale=C --auth-local=trust
        --auth-host=<auth> -N``; keyword arguments add or override initdb long options
        (``username='x'`` is ``--username=x``, ``auth='md5'`` is ``--auth=md5``; a value of
        ``True`` or ``None`` is a bare flag).
        """
        if self.get_status() != "not-initialized":
            raise ClusterError(f"cluster in {self._data_dir!r} has already been initialized")
        self._init_env()
        rundir = self._ensure_rundir()
        os.makedirs(self._data_dir, mode=0o700, exist_ok=True)
        os.chmod(self._data_dir, 0o700)
        self._give_to_owner(self._data_dir)

        options: dict[str, Any] = {
            "username": self._user,
            "encoding": "UTF8",
            "locale": "C",
            "auth-local": "trust",
            "auth-host": self._auth,
        }
        for key, value in settings.items():
            key = key.replace("_", "-")
            if key == "auth":
                options.pop("auth-local", None)
                options.pop("auth-host", None)
            options[key] = value
        if options.get("username"):
            self._user = str(options["username"])
        pwfile = None
        if self._password is not None and "pwfile" not in options:
            pwfile = os.path.join(rundir, "initdb.pw")
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(self._password + "\n")
            self._give_to_owner(pwfile)
            options["pwfile"] = pwfile
        args = [
            f"--{k}" if v is None or v is True else f"--{k}={v}"
            for k, v in options.items()
            if v is not False
        ]
        args.append("-N")  # no fsync of the new files: this is a throw-away cluster

        try:
            if _is_exe(os.path.join(self.bindir, "initdb")):
                proc = self._run_server_tool(
                    [self._binary("initdb"), "-D", self._data_dir, *args],
                    timeout=300,
                    what="initdb",
                )
            else:
                proc = self._run_server_tool(
                    [
                        self._binary("pg_ctl"),
                        "init",
                        "-D",
                        self._data_dir,
                        "-s",
                        "-o",
                        shlex.join(args),
                    ],
                    timeout=300,
                    what="pg_ctl init",
                )
        finally:
            if pwfile is not None:
                os.unlink(pwfile)
        return proc.stdout + proc.stderr

    def _merged_settings(self, extra: Mapping[str, Any] | None) -> dict[str, str]:
        merged = {**_DEFAULT_SERVER_SETTINGS, **self._server_settings, **(extra or {})}
        return {k: _setting_value(v) for k, v in merged.items()}

    def _prepare_ssl_files(self, settings: dict[str, str]) -> None:
        """Copy SSL files the server must own/read into the data dir (key with mode 0600)."""
        names = ["ssl_key_file"]
        if self._owner is not None:  # the server user may not be able to read the originals
            names += ["ssl_cert_file", "ssl_ca_file", "ssl_crl_file"]
        for name in names:
            src = settings.get(name)
            if not src or not os.path.isfile(src):
                continue
            dst = os.path.join(self._data_dir, "fpg_" + name.replace("_file", ".pem"))
            shutil.copyfile(src, dst)
            os.chmod(dst, 0o600)
            self._give_to_owner(dst)
            settings[name] = dst

    def start(
        self,
        wait: int = 60,
        *,
        server_settings: Mapping[str, Any] | None = None,
        port: int | str | None = None,
        **opts: Any,
    ) -> None:
        """Start the server and wait (up to *wait* seconds) until it accepts connections.

        *port*: ``None`` uses the port given to the constructor or used last, else a free one;
        ``'dynamic'`` always picks a free one.  *server_settings* are added as
        ``-c name=value``; *opts* as ``--name=value`` (asyncpg API).  A unix socket is put
        in a private directory (:attr:`socket_dir`) unless ``unix_socket_directories`` is
        given.  Does nothing if the server is already running.
        """
        status = self.get_status()
        if status == "running":
            return
        if status == "not-initialized":
            raise ClusterError(f"cluster in {self._data_dir!r} has not been initialized")
        self._init_env()
        pg_ctl = self._binary("pg_ctl")

        settings = self._merged_settings(server_settings)
        sockdir = settings.get("unix_socket_directories", settings.get("unix_socket_directory"))
        if sockdir is None:
            sockdir = self._ensure_rundir()
            settings["unix_socket_directories"] = sockdir
        self._socket_dir = sockdir.split(",")[0].strip() or None
        self._prepare_ssl_files(settings)

        dynamic = port == "dynamic" or (port is None and self._port is None)
        fixed_port = None if dynamic else int(port if port is not None else self._port)
        base_args = [f"--{k}={_setting_value(v)}" for k, v in opts.items()]
        for k, v in settings.items():
            base_args += ["-c", f"{k}={v}"]

        log_file = self.log_file
        attempts = 5 if dynamic else 1
        for attempt in range(attempts):
            chosen = find_available_port() if dynamic else fixed_port
            assert chosen is not None
            offset = os.path.getsize(log_file) if os.path.exists(log_file) else 0
            args = ["-p", str(chosen), *base_args]
            proc = self._run_server_tool(
                [
                    pg_ctl,
                    "start",
                    "-D",
                    self._data_dir,
                    "-w",
                    "-t",
                    str(max(int(wait), 1)),
                    "-s",
                    "-l",
                    log_file,
                    "-o",
                    shlex.join(args),
                ],
                timeout=wait + 30,
                check=False,
                what="pg_ctl start",
            )
            log = self._log_since(offset)
            if proc.returncode == 0:
                # With listen_addresses='localhost' the server also starts if only one of
                # 127.0.0.1/::1 could be bound; a dynamic port taken on 127.0.0.1 is retried.
                if dynamic and attempt + 1 < attempts and "could not bind IPv4" in log:
                    self._run_server_tool(
                        self._stop_command("immediate", 30)[len(self._run_as) :],
                        timeout=60,
                        check=False,
                    )
                    continue
                break
            if (
                dynamic
                and attempt + 1 < attempts
                and "could not bind" in log
                and self.get_status() != "running"
            ):
                continue
            raise ClusterError(
                f"pg_ctl start exited with status {proc.returncode}: "
                f"{(proc.stdout + proc.stderr).strip()}\n"
                f"server log ({log_file}):\n{log.strip()}"
            )
        self._port = chosen
        self._started_here = True
        self._connection_addr = None
        _register(self)
        self._start_watchdog()
        self._wait_until_accepting(wait)

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")[-8000:]
        except OSError:
            return ""

    def _wait_until_accepting(self, timeout: float) -> None:
        """Poll until the server's socket accepts a connection (pg_ctl -w already waited)."""
        if self._socket_dir:
            family, address = (
                socket.AF_UNIX,
                os.path.join(self._socket_dir, f".s.PGSQL.{self._port}"),
            )
            if len(address) > _MAX_SOCKET_PATH:
                return
        else:
            family, address = socket.AF_INET, (self.host, self._port)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.socket(family, socket.SOCK_STREAM) as s:
                    s.settimeout(2)
                    s.connect(address)
                return
            except OSError as e:
                if time.monotonic() > deadline or self.get_status() != "running":
                    raise ClusterError(
                        f"server does not accept connections on {address}: {e}"
                        f"\nserver log: {self.log_file}"
                    ) from e
                time.sleep(0.05)

    def _stop_command(self, mode: str, wait: int) -> list[str]:
        return self._run_as + [
            self._binary("pg_ctl"),
            "stop",
            "-D",
            self._data_dir,
            "-m",
            mode,
            "-w",
            "-t",
            str(wait),
            "-s",
        ]

    def _start_watchdog(self) -> None:
        """Spawn a process that stops the server once this Python process is gone."""
        self._kill_watchdog()
        remove = list(self._owned_dirs) + ([self._data_dir] if self._owns_data_dir() else [])
        env = _clean_env({"FPG_STOP_CMD": shlex.join(self._stop_command("immediate", 30))})
        try:
            self._watchdog = subprocess.Popen(
                [
                    "/bin/sh",
                    "-c",
                    _WATCHDOG_SCRIPT,
                    "ferropg-cluster-watchdog",
                    str(os.getpid()),
                    *remove,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
                cwd="/",
            )
        except OSError:  # pragma: no cover - no /bin/sh: rely on atexit only
            self._watchdog = None

    def _kill_watchdog(self) -> None:
        if self._watchdog is not None:
            if self._watchdog.poll() is None:
                self._watchdog.kill()
            self._watchdog.wait()
            self._watchdog = None

    def stop(self, wait: int = 60) -> None:
        """Stop the server (``pg_ctl stop -m fast``, then ``-m immediate`` if that fails)."""
        if self.get_status() != "running":
            self._kill_watchdog()
            return
        errors = []
        for mode in ("fast", "immediate"):
            proc = self._run_server_tool(
                self._stop_command(mode, wait)[len(self._run_as) :],
                timeout=wait + 30,
                check=False,
                what="pg_ctl stop",
            )
            if proc.returncode == 0 or self.get_status() != "running":
                break
            errors.append(f"-m {mode}: {(proc.stdout + proc.stderr).strip()}")
        if self.get_status() == "running":
            raise ClusterError("pg_ctl stop failed: " + "; ".join(errors))
        self._kill_watchdog()
        self._connection_addr = None

    def restart(self, wait: int = 60, **kwargs: Any) -> None:
        """Stop and start again (on the same port unless *port* is given)."""
        self.stop(wait)
        self.start(wait, **kwargs)

    def _owns_data_dir(self) -> bool:
        return False

    def destroy(self) -> None:
        """Stop the server if running and remove the data dir and the private directories."""
        self.stop()
        shutil.rmtree(self._data_dir, ignore_errors=True)
        self._remove_owned_dirs()

    def _remove_owned_dirs(self) -> None:
        for d in self._owned_dirs:
            shutil.rmtree(d, ignore_errors=True)
        self._owned_dirs = []
        self._rundir = None
        self._log_file = None
        _unregister(self)

    def _cleanup_at_exit(self) -> None:
        if self._started_here and self.get_status() == "running":
            try:
                self.stop(wait=10)
            except ClusterError:
                pass
        self._kill_watchdog()
        if self._owns_data_dir():
            shutil.rmtree(self._data_dir, ignore_errors=True)
        self._remove_owned_dirs()

    def __enter__(self: _C) -> _C:
        if self.get_status() == "not-initialized":
            self.init()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owns_data_dir():
            self.destroy()
        else:
            self.stop()
            self._remove_owned_dirs()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._data_dir} port={self._port}>"

    # ------------------------------------------------------- connection specs -----

    def _connection_addr_from_pidfile(self) -> dict[str, Any] | None:
        lines = self._read_pidfile()
        if not lines or len(lines) < 6:
            return None
        port, sockdir, hostaddr = lines[3], lines[4], lines[5]
        if sockdir:
            if not sockdir.startswith("/"):
                sockdir = os.path.normpath(os.path.join(self._data_dir, sockdir))
            host = sockdir
        else:
            host = {"*": "localhost", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(hostaddr, hostaddr)
        return {"host": host, "port": port}

    def get_connection_spec(self) -> dict[str, Any]:
        """asyncpg-style ``{'host': <socket dir>, 'port': '<port>'}`` of the running server.

        The host is the unix socket directory (TCP address if there is no socket), the port
        a string (both as in ``postmaster.pid``), updated by :meth:`override_connection_spec`.
        For TCP use :meth:`connection_kwargs` or :meth:`dsn`.
        """
        if self.get_status() != "running":
            raise ClusterError("cluster is not running")
        if self._connection_addr is None:
            deadline = time.monotonic() + 10
            while (addr := self._connection_addr_from_pidfile()) is None:
                if time.monotonic() > deadline:
                    raise ClusterError("cannot read the server address from postmaster.pid")
                time.sleep(0.05)
            self._connection_addr = addr
        spec = dict(self._connection_addr)
        spec.update(self._connection_spec_override or {})
        return spec

    def override_connection_spec(self, **kwargs: Any) -> None:
        """Replace entries of :meth:`get_connection_spec`'s result (e.g. ``host=...``)."""
        self._connection_spec_override = kwargs

    async def connect(self, loop: Any = None, **kwargs: Any) -> Any:
        """Connect with this package's ``connect()`` using :meth:`get_connection_spec`."""
        package = importlib.import_module(__package__ or "ferropg")
        spec = self.get_connection_spec()
        spec.update(kwargs)
        if loop is not None:
            spec["loop"] = loop
        return await package.connect(**spec)

    # ---------------------------------------------------------------------- HBA ----

    @property
    def hba_file(self) -> str:
        """Path of the cluster's ``pg_hba.conf``."""
        return os.path.join(self._data_dir, "pg_hba.conf")

    def reset_hba(self) -> None:
        """Remove all records from ``pg_hba.conf`` (takes effect on :meth:`reload`)."""
        if self.get_status() == "not-initialized":
            raise ClusterError("cannot modify HBA records: cluster is not initialized")
        try:
            with open(self.hba_file, "w"):
                pass
        except OSError as e:
            raise ClusterError(f"cannot modify HBA records: {e}") from e

    def add_hba_entry(
        self,
        type: str = "host",
        database: str = "all",
        user: str = "all",
        address: Any = None,
        auth_method: str = "trust",
        auth_options: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
    ) -> None:
        """Append a record to ``pg_hba.conf`` (first match wins; apply with :meth:`reload`).

        *address* defaults to ``127.0.0.1/32`` for non-``local`` types and is ignored for
        ``local``; it may be an :mod:`ipaddress` network.  *auth_options* is a mapping or
        ``(name, value)`` pairs, written as ``name=value``.
        """
        if self.get_status() == "not-initialized":
            raise ClusterError("cannot modify HBA records: cluster is not initialized")
        if type not in _VALID_HBA_TYPES:
            raise ValueError(f"invalid HBA record type: {type!r}")
        fields = [type, _hba_quote(str(database)), _hba_quote(str(user))]
        if type != "local":
            fields.append(str(address) if address is not None else "127.0.0.1/32")
        fields.append(auth_method)
        if auth_options:
            items = auth_options.items() if isinstance(auth_options, Mapping) else auth_options
            fields += [f"{k}={_hba_quote(str(v))}" for k, v in items]
        try:
            with open(self.hba_file, "a") as f:
                f.write(" ".join(fields) + "\n")
        except OSError as e:
            raise ClusterError(f"cannot modify HBA records: {e}") from e

    def trust_local_connections(self) -> None:
        """Reset ``pg_hba.conf`` to trust unix-socket and loopback connections (asyncpg API)."""
        self.reset_hba()
        self.add_hba_entry(type="local", auth_method="trust")
        self.add_hba_entry(type="host", address="127.0.0.1/32", auth_method="trust")
        self.add_hba_entry(type="host", address="::1/128", auth_method="trust")
        if self.get_status() == "running":
            self.reload()

    def trust_local_replication_by(self, user: str) -> None:
        """Allow *user* to connect for replication without a password (asyncpg API)."""
        self.add_hba_entry(type="local", database="replication", user=user, auth_method="trust")
        for address in ("127.0.0.1/32", "::1/128"):
            self.add_hba_entry(
                type="host", database="replication", user=user, address=address, auth_method="trust"
            )
        if self.get_status() == "running":
            self.reload()

    def _conf_load_time(self) -> str | None:
        try:
            return self.sql("SELECT pg_conf_load_time()", timeout=10)
        except ClusterError:
            return None

    def reload(self, timeout: float = 10) -> None:
        """Make the server re-read its configuration files and wait until it has.

        Sends ``pg_ctl reload``, then polls ``pg_conf_load_time()`` over the unix socket
        (new connections see new ``pg_hba.conf`` rules once it has changed).  If the new
        rules lock ``postgres`` out of the socket, a short pause is used instead.
        """
        if self.get_status() != "running":
            raise ClusterError("cannot reload: cluster is not running")
        before = self._conf_load_time()
        self._run_server_tool(
            [self._binary("pg_ctl"), "reload", "-D", self._data_dir, "-s"],
            timeout=60,
            what="pg_ctl reload",
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self._conf_load_time() if before is not None else None
            if now is None:
                time.sleep(0.3)
                return
            if now != before:
                return
            time.sleep(0.02)
        raise ClusterError(f"the server did not reload its configuration within {timeout}s")

    # ---------------------------------------------------------------- SQL via psql --

    def sql(
        self,
        query: str,
        *,
        user: str | None = None,
        database: str | None = None,
        host: str | None = None,
        password: str | None = None,
        timeout: float = 60,
    ) -> str:
        """Run SQL with ``psql`` and return its unaligned, tuples-only output.

        By default connects over the unix socket as ``postgres`` to ``postgres``; pass
        ``host='127.0.0.1'`` (and *user*/*password*) to test TCP authentication.  Statements
        are sent one by one in one session (``SET`` affects later statements; ``CREATE
        DATABASE`` works).  Raises :class:`ClusterError` with psql's message on any error
        (``ON_ERROR_STOP``).  Columns are separated by ``|``, rows by newlines.
        """
        self._init_env()
        assert self._bindir is not None
        psql = _find_psql(self._bindir)
        if psql is None:
            raise ClusterError("psql is not installed (it is needed by Cluster.sql())")
        if self.get_status() != "running":
            raise ClusterError("cluster is not running")
        port = self._port
        if port is None or (host is None and self._socket_dir is None):
            # a server started elsewhere: take its address from postmaster.pid
            addr = self._connection_addr_from_pidfile() or {}
            port = port if port is not None else addr.get("port")
            if host is None and self._socket_dir is None:
                host = addr.get("host")
        if host is None:
            host = self._socket_dir or self.host
        if password is None and (user or self._user) == self._user:
            password = self._password
        env = _clean_env(
            {
                "LC_ALL": "C",
                "PGCLIENTENCODING": "UTF8",
                "PGCONNECT_TIMEOUT": "10",
                "PGSSLMODE": "disable",
            }
        )
        if password is not None:
            env["PGPASSWORD"] = password
        args = [
            psql,
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            host,
            "-p",
            str(port),
            "-U",
            user or self._user,
            "-d",
            database or self._database,
            "-f",
            "-",
        ]
        try:
            proc = subprocess.run(
                args,
                input=query.encode(),
                capture_output=True,
                timeout=timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise ClusterError(f"psql timed out after {timeout}s") from e
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip()
            raise ClusterError(f"psql exited with status {proc.returncode}: {err}")
        return proc.stdout.decode("utf-8", "replace").rstrip("\n")

    # ---------------------------------------------------------------------- WAL ----

    def reset_wal(self, *, oid: int | None = None, xid: int | None = None) -> None:
        """Run ``pg_resetwal`` (``-o`` next OID, ``-x`` next XID) on the stopped cluster."""
        status = self.get_status()
        if status == "not-initialized":
            raise ClusterError("cannot modify WAL status: cluster is not initialized")
        if status == "running":
            raise ClusterError("cannot modify WAL status: cluster is running")
        opts = []
        if oid is not None:
            opts += ["-o", str(oid)]
        if xid is not None:
            opts += ["-x", str(xid)]
        if not opts:
            return
        try:
            tool = self._binary("pg_resetwal")
        except ClusterError:
            tool = self._binary("pg_resetxlog")
        self._run_server_tool([tool, *opts, self._data_dir], timeout=120, what="pg_resetwal")


class TempCluster(Cluster):
    """A cluster in a new temporary directory, removed by :meth:`destroy`.

    ``with TempCluster() as c:`` initialises and starts it, and stops and removes it on exit.
    *data_dir*: use this directory instead (created if missing; removed on exit only if it
    was created here).  *data_dir_suffix*/*data_dir_prefix*/*data_dir_parent* shape the
    temporary name (asyncpg API).  See :class:`Cluster` for the other arguments.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        port: int | str | None = None,
        *,
        auth: str = "trust",
        server_settings: Mapping[str, Any] | None = None,
        password: str | None = None,
        data_dir_suffix: str | None = None,
        data_dir_prefix: str | None = None,
        data_dir_parent: str | None = None,
        pg_config_path: str | None = None,
    ) -> None:
        owns = data_dir is None or not os.path.exists(data_dir)
        if data_dir is None:
            parent = data_dir_parent
            if parent is None:
                parent = _short_tmpdir(os.geteuid() == 0)
            data_dir = tempfile.mkdtemp(
                suffix=data_dir_suffix, prefix=data_dir_prefix or "fpgdata", dir=parent
            )
        super().__init__(
            data_dir,
            port=port,
            auth=auth,
            server_settings=server_settings,
            password=password,
            pg_config_path=pg_config_path,
        )
        self._owns_data = owns
        if owns:
            _register(self)

    def _owns_data_dir(self) -> bool:
        return self._owns_data


class HotStandbyCluster(TempCluster):
    """A streaming-replication standby of *master*, created with ``pg_basebackup``.

    *master* is the primary's :meth:`~Cluster.get_connection_spec` (``host``, ``port``),
    *replication_user* a role with ``REPLICATION`` that may connect for replication
    (see :meth:`~Cluster.trust_local_replication_by`).
    """

    def __init__(self, *, master: Mapping[str, Any], replication_user: str, **kwargs: Any) -> None:
        self._master = dict(master)
        self._repl_user = replication_user
        super().__init__(**kwargs)

    def init(self, **settings: Any) -> str:
        """Copy the primary with ``pg_basebackup`` and mark this cluster as a standby."""
        if self.get_status() != "not-initialized":
            raise ClusterError(f"cluster in {self._data_dir!r} has already been initialized")
        self._init_env()
        self._ensure_rundir()
        os.makedirs(self._data_dir, mode=0o700, exist_ok=True)
        os.chmod(self._data_dir, 0o700)
        self._give_to_owner(self._data_dir)
        proc = self._run_server_tool(
            [
                self._binary("pg_basebackup"),
                "-h",
                str(self._master["host"]),
                "-p",
                str(self._master["port"]),
                "-D",
                self._data_dir,
                "-U",
                self._repl_user,
                "-X",
                "stream",
            ],
            timeout=600,
            what="pg_basebackup",
        )
        if self.get_pg_version() >= (12, 0):
            marker = os.path.join(self._data_dir, "standby.signal")
            open(marker, "w").close()
        else:
            marker = os.path.join(self._data_dir, "recovery.conf")
            with open(marker, "w") as f:
                f.write("standby_mode = 'on'\n")
                f.write(f"primary_conninfo = '{self._primary_conninfo()}'\n")
        self._give_to_owner(marker)
        return proc.stdout + proc.stderr

    def _primary_conninfo(self) -> str:
        return " ".join(
            f"{k}={_conninfo_quote(v)}"
            for k, v in (
                ("host", self._master["host"]),
                ("port", self._master["port"]),
                ("user", self._repl_user),
            )
        )

    def start(
        self, wait: int = 60, *, server_settings: Mapping[str, Any] | None = None, **opts: Any
    ) -> None:
        """Start the standby (``primary_conninfo`` points at the primary)."""
        settings = dict(server_settings or {})
        if self.get_pg_version() >= (12, 0):
            settings["primary_conninfo"] = self._primary_conninfo()
        super().start(wait, server_settings=settings, **opts)


class RunningCluster(Cluster):
    """A server run by someone else, described by connection keyword arguments.

    Lifecycle methods do nothing and HBA edits raise :class:`ClusterError` (asyncpg API).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(os.devnull)
        self.conn_spec = kwargs

    def is_managed(self) -> bool:
        """Always false: the server is not controlled by this object."""
        return False

    def get_connection_spec(self) -> dict[str, Any]:
        """The connection keyword arguments given to the constructor."""
        return dict(self.conn_spec)

    def get_status(self) -> str:
        """Always ``'running'``."""
        return "running"

    def init(self, **settings: Any) -> str:
        """Does nothing."""
        return ""

    def start(self, wait: int = 60, **settings: Any) -> None:
        """Does nothing."""

    def stop(self, wait: int = 60) -> None:
        """Does nothing."""

    def destroy(self) -> None:
        """Does nothing."""

    def reset_hba(self) -> None:
        """Raises :class:`ClusterError`: the HBA file of an unmanaged server is off limits."""
        raise ClusterError("cannot modify HBA records of unmanaged cluster")

    def add_hba_entry(self, *args: Any, **kwargs: Any) -> None:
        """Raises :class:`ClusterError`: the HBA file of an unmanaged server is off limits."""
        raise ClusterError("cannot modify HBA records of unmanaged cluster")


# ------------------------------------------------------------------------- main -------


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _unescape(field: str) -> str:
    out = []
    chars = iter(field)
    for c in chars:
        if c == "\\":
            c = {"t": "\t", "n": "\n"}.get(nxt := next(chars, "\\"), nxt)
        out.append(c)
    return "".join(out)


def _serve_one(cluster: Cluster, op: str, args: list[str]) -> str:
    """One request of :func:`serve`: the reply's payload, or :class:`ClusterError`."""
    if op == "sql":
        query, user, host, password = (args + ["", "", "", ""])[:4]
        return cluster.sql(query, user=user or None, host=host or None, password=password or None)
    if op == "reset_hba":
        cluster.reset_hba()
    elif op == "add_hba":
        kind, database, user, address, method = args
        cluster.add_hba_entry(
            type=kind, database=database, user=user, address=address or None, auth_method=method
        )
    elif op == "reload":
        cluster.reload()
    elif op == "give":
        cluster._give_to_owner(args[0])
    elif op == "stop":
        cluster.stop()
    else:
        raise ClusterError(f"unknown request {op!r}")
    return ""


def serve(cluster: Cluster, requests: Any = None, replies: Any = None) -> None:
    """Runs *cluster* for another program (the Rust tests' ``support::TempCluster``) over
    a line protocol: one ``ready`` line with the server's address, then a reply per
    request line, until *requests* (stdin) ends; the caller then stops and removes it.

    Fields are tab-separated, with backslash, tab and newline escaped (``\\\\``,
    ``\\t``, ``\\n``). ``ready`` carries host, port, socket directory, data directory,
    bin directory, log file and user. Requests: ``sql`` query [user host password],
    ``reset_hba``, ``add_hba`` type database user address method, ``reload``, ``give`` path
    (hand a file to the server's OS user), ``stop``. Replies: ``ok`` payload, or ``err``
    message.
    """
    requests = requests or sys.stdin
    replies = replies or sys.stdout

    def reply(*fields: str) -> None:
        replies.write("\t".join(_escape(f) for f in fields) + "\n")
        replies.flush()

    reply(
        "ready",
        cluster.host,
        str(cluster.port),
        cluster.socket_dir,
        cluster.data_dir,
        cluster.bindir,
        cluster.log_file,
        cluster.user,
    )
    for line in requests:
        op, *args = [_unescape(f) for f in line.rstrip("\n").split("\t")]
        try:
            reply("ok", _serve_one(cluster, op, args))
        except (ClusterError, ValueError, OSError) as e:
            reply("err", str(e))


def main(argv: list[str] | None = None) -> int:
    """``python -m ferropg.cluster``: run a temporary cluster until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m ferropg.cluster",
        description="Start a temporary PostgreSQL cluster, print its DSN, wait for Ctrl-C.",
    )
    parser.add_argument("--port", type=int, help="TCP port (default: a free one)")
    parser.add_argument(
        "-c",
        dest="settings",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="server setting (repeatable)",
    )
    parser.add_argument(
        "--print-bindir",
        action="store_true",
        help="print the PostgreSQL bin directory that would be used and exit",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="answer requests on stdin until it ends (see serve()), instead of waiting",
    )
    parser.add_argument(
        "--standby-of",
        metavar="HOST:PORT",
        help="a hot standby of this server (host may be a socket directory), by pg_basebackup",
    )
    args = parser.parse_args(argv)
    try:
        if args.print_bindir:
            print(find_bindir())
            return 0
        settings = dict(s.split("=", 1) for s in args.settings)
    except (ClusterError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    cluster: TempCluster
    if args.standby_of:
        host, _, port = args.standby_of.rpartition(":")
        cluster = HotStandbyCluster(
            master={"host": host, "port": port},
            replication_user="postgres",
            port=args.port,
            server_settings={"hot_standby": "on", **settings},
        )
    else:
        cluster = TempCluster(port=args.port, server_settings=settings)
    try:
        with cluster:
            if args.serve:
                serve(cluster)
                return 0
            print(cluster.dsn(), flush=True)
            print(
                f"# socket dir: {cluster.socket_dir}  data dir: {cluster.data_dir}  "
                f"PostgreSQL {cluster.server_version}",
                file=sys.stderr,
            )
            print(
                f'# psql "{cluster.dsn()}"   (Ctrl-C stops and removes the cluster)',
                file=sys.stderr,
                flush=True,
            )
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    except ClusterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

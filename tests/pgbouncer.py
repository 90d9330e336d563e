"""pgbouncer processes in front of a test cluster, for the tests of ferropg behind a pooler.

:class:`PgBouncer` writes a config into a private temporary directory, starts ``pgbouncer``
in the foreground (as the cluster's OS user, ``postgres``, when we are root: pgbouncer
refuses to run as root), waits until it accepts connections, and stops it again.  Defaults
are those of the pooler setups that break drivers: ``pool_mode = transaction`` and a tiny
``default_pool_size`` (2), so that client connections really share server connections.

* Clients reach it on ``127.0.0.1:<port>`` (:meth:`PgBouncer.connect_kwargs`,
  :meth:`PgBouncer.dsn`) or on its unix socket in :attr:`PgBouncer.socket_dir`.
* It reaches the cluster on the cluster's unix socket (TCP when it has none), as the
  cluster's users, with ``auth_type = trust`` on both sides (the user names are listed in
  the ``auth_file``, as ``trust`` requires).
* ``ignore_startup_parameters``: the parameters pgbouncer does not track itself
  (``extra_float_digits`` and ``options`` by default; ferropg sends ``client_encoding``
  and the caller's ``server_settings``).
* Server connections are used round robin (``server_round_robin = 1``) and :meth:`start`
  opens all ``default_pool_size`` of them at once (:meth:`PgBouncer.warm`), so that a
  client's consecutive transactions really alternate between server connections, even when
  it is the only client: the case that breaks statements prepared in one of them.
* :meth:`PgBouncer.admin` runs a command on the admin console (``SHOW POOLS``, ``SHOW
  SERVERS``, ``PAUSE``...), through ``psql`` because the console speaks only the simple
  query protocol.  :meth:`PgBouncer.server_pids` are the backends it holds.
* :meth:`PgBouncer.restart` stops it (every client and server connection drops) and starts
  it again on the same port; :meth:`PgBouncer.kill` stops it hard (SIGKILL).

A watchdog shell process stops pgbouncer and removes the directory if the Python process
dies without cleaning up (as :mod:`ferropg.cluster` does for its servers).
"""

from __future__ import annotations

import csv
import io
import os
import pwd
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["PgBouncer", "PgBouncerError", "find_pgbouncer"]

#: Where Debian's package puts the binary (``/usr/sbin`` may not be on a user's PATH).
_SEARCH_PATH = os.pathsep.join(["/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"])

_WATCHDOG_SCRIPT = """
parent=$1; child=$2; dir=$3
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
kill -TERM "$child" 2>/dev/null
sleep 1
kill -KILL "$child" 2>/dev/null
rm -rf -- "$dir"
"""


class PgBouncerError(Exception):
    """pgbouncer could not be found, started or stopped."""


def find_pgbouncer() -> str | None:
    """The pgbouncer executable: ``$PGBOUNCER``, else on ``$PATH`` or in ``/usr/sbin``."""
    explicit = os.environ.get("PGBOUNCER")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path=_SEARCH_PATH)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ini_value(value: Any) -> str:
    if value is True:
        return "1"
    if value is False:
        return "0"
    return str(value)


def _connstr_value(value: Any) -> str:
    value = str(value)
    if value and all(c.isalnum() or c in "_./-" for c in value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _query(sql: str) -> bytes:
    body = sql.encode() + b"\x00"
    return b"Q" + struct.pack("!I", len(body) + 4) + body


def _send_startup(sock: socket.socket, user: str, database: str) -> None:
    body = struct.pack("!I", 196608)
    for k, v in (("user", user), ("database", database)):
        body += k.encode() + b"\x00" + v.encode() + b"\x00"
    body += b"\x00"
    sock.sendall(struct.pack("!I", len(body) + 4) + body)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise PgBouncerError("pgbouncer closed the connection")
        buf += chunk
    return buf


def _read_until_ready(sock: socket.socket) -> None:
    """Reads messages up to ReadyForQuery; an ErrorResponse (or an authentication
    request other than AuthenticationOk) raises."""
    while True:
        kind = _recv_exact(sock, 1)
        (length,) = struct.unpack("!I", _recv_exact(sock, 4))
        body = _recv_exact(sock, length - 4)
        if kind == b"E":
            fields = dict(
                (f[:1], f[1:].decode("utf-8", "replace")) for f in body.split(b"\x00") if f
            )
            raise PgBouncerError(f"pgbouncer: {fields.get(b'M', body)!r}")
        if kind == b"R" and struct.unpack("!I", body[:4])[0] != 0:
            raise PgBouncerError("pgbouncer asked for a password (auth_type is not trust?)")
        if kind == b"Z":
            return


class PgBouncer:
    """One pgbouncer in front of *cluster* (a started :class:`ferropg.cluster.Cluster`).

    *pool_mode*, *default_pool_size*, *max_client_conn* and *ignore_startup_parameters*
    go to the ``[pgbouncer]`` section; *settings* adds or overrides any other setting there
    (``{"max_prepared_statements": 100}``, ``{"query_wait_timeout": 5}``...).  *users* are
    the role names clients may log in as (the cluster's superuser is always one).
    *round_robin*: ``server_round_robin`` (on by default: consecutive transactions of one
    client alternate between server connections); *warm*: :meth:`start` opens every
    server connection of the pool (:meth:`warm`) before it returns.
    """

    def __init__(
        self,
        cluster: Any,
        *,
        pool_mode: str = "transaction",
        default_pool_size: int = 2,
        max_client_conn: int = 200,
        ignore_startup_parameters: Iterable[str] = ("extra_float_digits", "options"),
        users: Iterable[str] = (),
        settings: Mapping[str, Any] | None = None,
        round_robin: bool = True,
        warm: bool = True,
    ) -> None:
        self.cluster = cluster
        self.pool_mode = pool_mode
        self.default_pool_size = default_pool_size
        self.max_client_conn = max_client_conn
        self.ignore_startup_parameters = list(ignore_startup_parameters)
        self.users = [cluster.user, *(u for u in users if u != cluster.user)]
        self.settings = dict(settings or {})
        self.round_robin = round_robin
        self.warm_on_start = warm
        self.host = "127.0.0.1"
        self.port: int | None = None
        self._binary = find_pgbouncer()
        if self._binary is None:
            raise PgBouncerError(
                "pgbouncer is not installed (scripts/setup.sh installs Debian's package; "
                "$PGBOUNCER may name the executable)"
            )
        self._owner = self._os_user()
        self._dir: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._log_offset = 0
        #: How many times :meth:`start` started it.
        self.starts = 0

    # ------------------------------------------------------------------ set-up ----

    @staticmethod
    def _os_user() -> pwd.struct_passwd | None:
        """The OS user to run pgbouncer as: the cluster's (``postgres``) when root."""
        name = os.environ.get("FERROPG_PG_OS_USER")
        if os.geteuid() != 0 and not name:
            return None
        try:
            owner = pwd.getpwnam(name or "postgres")
        except KeyError:
            raise PgBouncerError(
                f"pgbouncer refuses to run as root and there is no OS user "
                f"{name or 'postgres'!r} to run it as (scripts/setup.sh creates it)"
            ) from None
        return None if owner.pw_uid == os.geteuid() else owner

    def _run_as(self) -> list[str]:
        if self._owner is None:
            return []
        setpriv = shutil.which("setpriv") or shutil.which("setpriv", path=_SEARCH_PATH)
        if setpriv:
            return [
                setpriv,
                f"--reuid={self._owner.pw_uid}",
                f"--regid={self._owner.pw_gid}",
                "--init-groups",
                "--",
            ]
        runuser = shutil.which("runuser") or shutil.which("runuser", path=_SEARCH_PATH)
        if runuser:
            return [runuser, "-u", self._owner.pw_name, "--"]
        raise PgBouncerError("running as root, but neither setpriv nor runuser is available")

    @property
    def directory(self) -> str:
        """The private directory: config, auth file, log, pid file and the unix socket."""
        if self._dir is None:
            # Short, for the unix socket path; reachable by the OS user that runs pgbouncer.
            parent = "/tmp" if len(tempfile.gettempdir()) > 60 else tempfile.gettempdir()
            if self._owner is not None:
                parent = "/tmp"
            self._dir = tempfile.mkdtemp(prefix="fpgb", dir=parent)
            if self._owner is not None:
                os.chown(self._dir, self._owner.pw_uid, self._owner.pw_gid)
        return self._dir

    @property
    def socket_dir(self) -> str:
        """Directory of pgbouncer's unix socket (``.s.PGSQL.<port>``)."""
        return self.directory

    @property
    def config_file(self) -> str:
        return os.path.join(self.directory, "pgbouncer.ini")

    @property
    def log_file(self) -> str:
        return os.path.join(self.directory, "pgbouncer.log")

    def _write(self, name: str, text: str) -> str:
        path = os.path.join(self.directory, name)
        with open(path, "w") as f:
            f.write(text)
        if self._owner is not None:
            os.chown(path, self._owner.pw_uid, self._owner.pw_gid)
        return path

    def _server_address(self) -> tuple[str, int]:
        """How pgbouncer reaches the cluster: its unix socket dir, else TCP."""
        port = int(self.cluster.port)
        sockdir = getattr(self.cluster, "socket_dir", None)
        if sockdir and os.path.exists(os.path.join(sockdir, f".s.PGSQL.{port}")):
            return sockdir, port
        return self.cluster.host, port

    def _write_config(self) -> None:
        assert self.port is not None
        auth_file = self._write("userlist.txt", "".join(f'"{u}" ""\n' for u in self.users))
        server_host, server_port = self._server_address()
        section: dict[str, Any] = {
            "listen_addr": self.host,
            "listen_port": self.port,
            "unix_socket_dir": self.directory,
            "auth_type": "trust",
            "auth_file": auth_file,
            "admin_users": self.cluster.user,
            "stats_users": self.cluster.user,
            "pool_mode": self.pool_mode,
            "default_pool_size": self.default_pool_size,
            "min_pool_size": 0,
            "reserve_pool_size": 0,
            "max_client_conn": self.max_client_conn,
            "ignore_startup_parameters": ",".join(self.ignore_startup_parameters),
            "logfile": self.log_file,
            "pidfile": os.path.join(self.directory, "pgbouncer.pid"),
            "log_connections": 0,
            "log_disconnections": 0,
            "server_round_robin": 1 if self.round_robin else 0,
            "server_login_retry": 1,
            "server_connect_timeout": 5,
        }
        section.update(self.settings)
        lines = [
            "[databases]",
            f"* = host={_connstr_value(server_host)} port={server_port}",
            "",
            "[pgbouncer]",
            *(f"{k} = {_ini_value(v)}" for k, v in section.items() if v is not None),
            "",
        ]
        self._write("pgbouncer.ini", "\n".join(lines))

    # ------------------------------------------------------------- life cycle ----

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def died(self) -> bool:
        """Whether pgbouncer exited without :meth:`stop` or :meth:`kill` (a crash: see
        :meth:`fatal_lines`)."""
        return self._proc is not None and self._proc.poll() is not None and not self._stopping

    @property
    def returncode(self) -> int | None:
        """The exit status of the last pgbouncer process (``None`` while it runs)."""
        return None if self._proc is None else self._proc.poll()

    @property
    def pid(self) -> int | None:
        """The pgbouncer process id (``None`` when stopped)."""
        return self._proc.pid if self.running else None

    def start(self, timeout: float = 30.0) -> PgBouncer:
        """Start pgbouncer (on the port it had before, else a free one) and wait until it
        accepts connections.  Does nothing if it is running."""
        if self.running:
            return self
        self._stopping = False
        keep_port = self.port is not None
        for attempt in range(5):
            if not keep_port:
                self.port = _free_port()
            self._write_config()
            offset = os.path.getsize(self.log_file) if os.path.exists(self.log_file) else 0
            self._log_offset = offset
            env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
            if self._owner is not None:
                env["HOME"] = self._owner.pw_dir
            self._proc = subprocess.Popen(
                [*self._run_as(), self._binary, self.config_file],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=self.directory,
                env=env,
                start_new_session=True,
            )
            try:
                self._wait_until_accepting(timeout)
            except PgBouncerError:
                log = self._log_since(offset)
                self._reap()
                if not keep_port and attempt < 4 and "Address already in use" in log:
                    continue
                raise
            break
        self.starts += 1
        self._start_watchdog()
        if self.warm_on_start:
            self.warm()
        return self

    def warm(self, servers: int | None = None, timeout: float = 30.0) -> None:
        """Makes pgbouncer open *servers* (default: ``default_pool_size``) server connections
        to the cluster's database, by holding that many client transactions open at once
        (plain protocol over sockets, no driver involved), and waits until ``SHOW SERVERS``
        lists them."""
        n = self.default_pool_size if servers is None else servers
        assert self.port is not None
        deadline = time.monotonic() + timeout
        socks: list[socket.socket] = []
        try:
            for _ in range(n):
                s = socket.create_connection((self.host, self.port), timeout=timeout)
                socks.append(s)
                _send_startup(s, self.cluster.user, self.cluster.database)
                _read_until_ready(s)
            # Every client opens a transaction: each needs a server connection of its own.
            for s in socks:
                s.sendall(_query("BEGIN"))
            for s in socks:
                _read_until_ready(s)
            for s in socks:
                s.sendall(_query("ROLLBACK"))
            for s in socks:
                _read_until_ready(s)
                s.sendall(b"X\x00\x00\x00\x04")
        finally:
            for s in socks:
                s.close()
        while len(self.server_pids()) < n:
            if time.monotonic() > deadline:
                raise PgBouncerError(f"pgbouncer did not open {n} server connections")
            time.sleep(0.02)

    def _wait_until_accepting(self, timeout: float) -> None:
        """Polls pgbouncer's TCP port until a connection is accepted (the port is bound
        after the config is loaded) or the process exits."""
        assert self._proc is not None and self.port is not None
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise PgBouncerError(
                    f"pgbouncer exited with status {self._proc.returncode} on start:\n"
                    f"{self._log_tail()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError as e:
                if time.monotonic() > deadline:
                    raise PgBouncerError(
                        f"pgbouncer does not accept connections on {self.host}:{self.port} "
                        f"after {timeout}s: {e}\n{self._log_tail()}"
                    ) from e
            time.sleep(0.02)

    def _start_watchdog(self) -> None:
        self._kill_watchdog()
        assert self._proc is not None
        self._watchdog = subprocess.Popen(
            [
                "/bin/sh",
                "-c",
                _WATCHDOG_SCRIPT,
                "ferropg-pgbouncer-watchdog",
                str(os.getpid()),
                str(self._proc.pid),
                self.directory,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd="/",
        )

    def _kill_watchdog(self) -> None:
        if self._watchdog is not None:
            if self._watchdog.poll() is None:
                self._watchdog.kill()
            self._watchdog.wait()
            self._watchdog = None

    def _reap(self, timeout: float = 10.0) -> None:
        if self._proc is None:
            return
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def stop(self, timeout: float = 10.0) -> None:
        """Immediate shutdown (SIGTERM): every client and server connection is closed.
        SIGKILL if it is still there after *timeout* seconds."""
        self._stopping = True
        self._kill_watchdog()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        self._reap(timeout)

    def kill(self) -> None:
        """Stops pgbouncer with SIGKILL: no goodbye to clients or servers."""
        self._stopping = True
        self._kill_watchdog()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        self._reap()

    def restart(self, timeout: float = 30.0, *, hard: bool = False) -> None:
        """Stops pgbouncer (SIGTERM, or SIGKILL with *hard*) and starts it again on the same
        port; returns once it accepts connections.  Clients' connections are dropped."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start(timeout)

    def close(self) -> None:
        """Stop and remove the private directory."""
        self.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<PgBouncer {self.host}:{self.port} {self.pool_mode} ({state})>"

    # ---------------------------------------------------------------- clients ----

    def connect_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for ``ferropg.connect()`` / ``create_pool()`` via pgbouncer."""
        assert self.port is not None, "start() pgbouncer first"
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.cluster.user,
            "database": self.cluster.database,
        }
        kwargs.update(overrides)
        return kwargs

    def unix_connect_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Like :meth:`connect_kwargs`, over pgbouncer's unix socket."""
        return self.connect_kwargs(host=self.socket_dir, **overrides)

    def dsn(self, database: str | None = None) -> str:
        assert self.port is not None, "start() pgbouncer first"
        return (
            f"postgresql://{self.cluster.user}@{self.host}:{self.port}/"
            f"{database or self.cluster.database}"
        )

    def admin(self, command: str) -> list[dict[str, str]]:
        """Runs *command* on the admin console (database ``pgbouncer``); the rows it
        returned, as dicts of text (empty for commands such as ``PAUSE``)."""
        assert self.port is not None, "start() pgbouncer first"
        psql = os.path.join(self.cluster.bindir, "psql")
        if not os.access(psql, os.X_OK):
            psql = shutil.which("psql") or "psql"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        proc = subprocess.run(
            [
                psql,
                "-X",
                "-q",
                "--csv",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.cluster.user,
                "-d",
                "pgbouncer",
                "-c",
                command,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise PgBouncerError(
                f"pgbouncer admin {command!r} failed: {(proc.stdout + proc.stderr).strip()}"
            )
        if not proc.stdout.strip():
            return []
        return list(csv.DictReader(io.StringIO(proc.stdout)))

    def server_pids(self, database: str | None = None) -> list[int]:
        """Backend PIDs of pgbouncer's server connections (``SHOW SERVERS``)."""
        database = database or self.cluster.database
        return sorted(
            int(row["remote_pid"])
            for row in self.admin("SHOW SERVERS")
            if row.get("database") == database and row.get("remote_pid", "0") != "0"
        )

    def pool(self, database: str | None = None) -> dict[str, str]:
        """This database's row of ``SHOW POOLS`` (``cl_active``, ``sv_idle``...)."""
        database = database or self.cluster.database
        for row in self.admin("SHOW POOLS"):
            if row.get("database") == database and row.get("user") == self.cluster.user:
                return row
        return {}

    def version(self) -> tuple[int, ...]:
        """pgbouncer's version, e.g. ``(1, 18, 0)``."""
        out = subprocess.run(
            [self._binary, "--version"], capture_output=True, text=True, check=False
        ).stdout
        first = out.split()
        for word in first:
            parts = word.split(".")
            if len(parts) >= 2 and all(p.isdigit() for p in parts):
                return tuple(int(p) for p in parts)
        raise PgBouncerError(f"cannot read pgbouncer's version from {out!r}")

    def _log_tail(self, limit: int = 4000) -> str:
        try:
            with open(self.log_file, "rb") as f:
                return f.read().decode("utf-8", "replace")[-limit:]
        except OSError:
            return "(no log)"

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log(self) -> str:
        """pgbouncer's log so far."""
        return self._log_since(0)

    def fatal_lines(self) -> list[str]:
        """The FATAL lines the last pgbouncer process logged, each with the line before it
        (what pgbouncer was doing)."""
        lines = self._log_since(self._log_offset).splitlines()
        out: list[str] = []
        for i, line in enumerate(lines):
            if " FATAL " in line:
                out.extend(lines[max(i - 1, 0) : i + 1])
        return out


def _main() -> None:  # pragma: no cover - manual use
    """``python tests/pgbouncer.py``: a cluster and a pgbouncer; prints the DSN, waits."""
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
    from ferropg.cluster import TempCluster

    with TempCluster() as cluster, PgBouncer(cluster) as bouncer:
        print(bouncer.dsn(), flush=True)
        print(shlex.join(["psql", bouncer.dsn()]), flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    _main()

"""A pg_auto_failover formation on this machine, for the failover tests: a monitor and two
data nodes, each run by its own ``pg_autoctl`` process.

``pg_autoctl`` (Debian: ``postgresql-15-auto-failover``, which ``scripts/setup.sh``
installs) creates the servers itself: the monitor with ``pg_autoctl create monitor``, the
nodes with ``pg_autoctl create postgres`` (the second one by ``pg_basebackup`` from the
first), and it runs synchronous replication between them
(``synchronous_standby_names = 'ANY 1 (...)'``).  The engine does the failover:
:meth:`Formation.perform_failover` asks the monitor for one (``pg_autoctl perform
failover``), and :meth:`Formation.wait_stable` polls the monitor's view (``pg_autoctl show
state --json``) until every node has reached the state it was assigned.

Everything runs as the ``postgres`` OS user when we are root (PostgreSQL refuses root),
inside one private temporary directory that also holds ``pg_autoctl``'s configuration and
state files (``HOME`` and the ``XDG_*`` directories point there).  Every process is started
here and stopped by its id; a watchdog stops them and removes the directory if the Python
process dies first, as :mod:`ferropg.cluster` does for its servers.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any

from ferropg.cluster import Cluster, find_available_port, find_bindir

__all__ = ["AutoFailoverError", "Formation", "find_pg_autoctl"]

#: Where Debian's package puts it (``/usr/bin``), should ``$PATH`` not have it.
_SEARCH_PATH = os.pathsep.join(["/usr/bin", "/usr/local/bin", "/usr/sbin"])

_WATCHDOG_SCRIPT = """
parent=$1; shift; dir=$1; shift
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
for pid in "$@"; do kill -TERM "$pid" 2>/dev/null; done
sleep 5
for pid in "$@"; do kill -KILL "$pid" 2>/dev/null; done
eval "$FPG_STOP_CMD" >/dev/null 2>&1
rm -rf -- "$dir"
"""


class AutoFailoverError(Exception):
    """pg_autoctl could not be found, or the formation could not be made or stopped."""


def find_pg_autoctl() -> str | None:
    """The ``pg_autoctl`` executable: ``$PG_AUTOCTL``, else on ``$PATH`` or in /usr/bin."""
    explicit = os.environ.get("PG_AUTOCTL")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("pg_autoctl") or shutil.which("pg_autoctl", path=_SEARCH_PATH)


class Formation:
    """A monitor and the data nodes ``node1`` and ``node2`` on ``127.0.0.1``; made and
    started by :meth:`start`, stopped and removed by :meth:`close`."""

    host = "127.0.0.1"
    node_names = ("node1", "node2")

    def __init__(self) -> None:
        pg_autoctl = find_pg_autoctl()
        if pg_autoctl is None:
            raise AutoFailoverError(
                "pg_autoctl not found (scripts/setup.sh installs it: apt-get install "
                "postgresql-15-auto-failover)"
            )
        self.pg_autoctl = pg_autoctl
        self.bindir = find_bindir()
        self._as_owner: list[str] = []
        owner = None
        if os.geteuid() == 0:
            owner = pwd.getpwnam(os.environ.get("FERROPG_PG_OS_USER") or "postgres")
            self._as_owner = Cluster._privilege_drop_command(owner)
        self.dir = tempfile.mkdtemp(prefix="fpgaf", dir="/tmp")
        if owner is not None:
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self.env = {
            "PATH": f"{self.bindir}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": self.dir,
            "XDG_CONFIG_HOME": os.path.join(self.dir, "config"),
            "XDG_DATA_HOME": os.path.join(self.dir, "share"),
            "XDG_RUNTIME_DIR": os.path.join(self.dir, "run"),
            "PG_CONFIG": os.path.join(self.bindir, "pg_config"),
            "LC_ALL": "C",
        }
        # pg_autoctl keeps its pid files in $XDG_RUNTIME_DIR when that exists, else in
        # a directory of /tmp shared by everyone.
        for sub in ("config", "share", "run"):
            path = os.path.join(self.dir, sub)
            os.mkdir(path, 0o700)
            if owner is not None:
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self.monitor_port = find_available_port()
        self.ports = {name: find_available_port() for name in self.node_names}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._watchdog: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<Formation {self.dir} monitor={self.monitor_port} nodes={self.ports}>"

    # ---------------------------------------------------------------- running ----

    def pgdata(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def log(self, name: str) -> str:
        return os.path.join(self.dir, f"{name}.log")

    def autoctl(self, *args: str, timeout: float = 60) -> str:
        """Runs ``pg_autoctl args...`` to its end and returns its output; a failure
        raises AutoFailoverError with what it said."""
        argv = [*self._as_owner, self.pg_autoctl, *args]
        try:
            proc = subprocess.run(
                argv,
                env=self.env,
                cwd=self.dir,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise AutoFailoverError(f"{shlex.join(argv)} timed out after {timeout}s") from e
        if proc.returncode != 0:
            raise AutoFailoverError(
                f"{shlex.join(argv)} exited with status {proc.returncode}:\n"
                f"{proc.stdout}{proc.stderr}".strip()
            )
        return proc.stdout

    def _service(self, name: str) -> None:
        """Starts ``pg_autoctl run`` for the node ``name`` (made by ``pg_autoctl create``)
        in the background, its output in :meth:`log`."""
        with open(self.log(name), "ab") as log:
            self.procs[name] = subprocess.Popen(
                [*self._as_owner, self.pg_autoctl, "run", "--pgdata", self.pgdata(name)],
                env=self.env,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._start_watchdog()

    def _start_watchdog(self) -> None:
        if self._watchdog is not None and self._watchdog.poll() is None:
            self._watchdog.kill()
            self._watchdog.wait()
        pids = [str(p.pid) for p in self.procs.values()]
        pg_ctl = os.path.join(self.bindir, "pg_ctl")
        stop = "; ".join(
            shlex.join([*self._as_owner, pg_ctl, "stop", "-D", self.pgdata(n), "-m", "immediate"])
            for n in ("monitor", *self.node_names)
        )
        self._watchdog = subprocess.Popen(
            ["/bin/sh", "-c", _WATCHDOG_SCRIPT, "ferropg-af-watchdog", str(os.getpid()), self.dir]
            + pids,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FPG_STOP_CMD": stop},
            cwd="/",
        )

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AutoFailoverError(
                    f"pg_autoctl for {name} exited with status {proc.returncode}:\n"
                    + self.tail(name)
                )

    def tail(self, name: str, size: int = 3000) -> str:
        try:
            with open(self.log(name), "rb") as f:
                return f.read().decode("utf-8", "replace")[-size:]
        except OSError:
            return ""

    # ------------------------------------------------------------------ making ----

    @property
    def monitor_uri(self) -> str:
        return f"postgres://autoctl_node@{self.host}:{self.monitor_port}/pg_auto_failover?sslmode=disable"

    def start(self, timeout: float = 120) -> Formation:
        """Creates and runs the monitor, then each node in turn; returns once the first
        is the primary and the second its secondary.

        Each is made by ``pg_autoctl create`` to its end, then run by ``pg_autoctl run``:
        ``create ... --run`` races anything else that runs ``pg_autoctl`` meanwhile (our
        ``show state``) to create its state directory, and loses with "File exists"."""
        pg_ctl = os.path.join(self.bindir, "pg_ctl")
        common = ["--hostname", self.host, "--auth", "trust", "--no-ssl", "--pgctl", pg_ctl]
        self.autoctl(
            *["create", "monitor", "--pgdata", self.pgdata("monitor")],
            *["--pgport", str(self.monitor_port), *common],
            timeout=timeout,
        )
        self._service("monitor")
        self._wait(lambda: self._state_or_none() is not None, timeout, "the monitor")
        for name in self.node_names:
            self.autoctl(
                *["create", "postgres", "--pgdata", self.pgdata(name), "--name", name],
                *["--pgport", str(self.ports[name]), "--listen", self.host],
                *["--monitor", self.monitor_uri, *common],
                timeout=timeout,
            )
            self._service(name)
            self.wait_stable(timeout)
        return self

    # ------------------------------------------------------------------ states ----

    def state(self) -> list[dict[str, Any]]:
        """The monitor's view of the nodes (``pg_autoctl show state --json``)."""
        out = self.autoctl("show", "state", "--pgdata", self.pgdata("monitor"), "--json")
        return json.loads(out) if out.strip() else []

    def _state_or_none(self) -> list[dict[str, Any]] | None:
        self._check_alive()
        try:
            return self.state()
        except (AutoFailoverError, ValueError):
            return None

    def _wait(self, predicate: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AutoFailoverError(
                    f"timed out after {timeout}s waiting for {what}; state: "
                    f"{self._state_or_none()}\n"
                    + "\n".join(f"--- {n}:\n{self.tail(n, 1500)}" for n in self.procs)
                )
            time.sleep(0.1)

    @staticmethod
    def _stable(nodes: list[dict[str, Any]] | None) -> bool:
        if not nodes:
            return False
        states = sorted(n["current_group_state"] for n in nodes)
        settled = all(n["current_group_state"] == n["assigned_group_state"] for n in nodes)
        want = ["primary"] + ["secondary"] * (len(nodes) - 1) if len(nodes) > 1 else ["single"]
        return settled and states == sorted(want)

    def wait_stable(self, timeout: float = 90, *, primary: str | None = None) -> str:
        """Waits until every node has reached its assigned state, one the primary and the
        others secondaries (``primary`` names which one, if given); returns the
        primary's name."""

        def check() -> str | None:
            nodes = self._state_or_none()
            if not self._stable(nodes):
                return None
            assert nodes is not None
            name = next(
                n["nodename"] for n in nodes if n["current_group_state"] in ("primary", "single")
            )
            return name if primary in (None, name) else None

        return self._wait(check, timeout, f"a stable formation (primary {primary or 'any'})")

    def primary(self) -> str:
        """The name of the node the monitor has as primary."""
        return next(n["nodename"] for n in self.state() if n["current_group_state"] == "primary")

    def perform_failover(self) -> None:
        """Asks the monitor to fail over (``pg_autoctl perform failover``), without
        waiting: :meth:`wait_stable` waits on the states."""
        self.autoctl("perform", "failover", "--pgdata", self.pgdata("monitor"), "--wait", "0")

    # --------------------------------------------------------------- addresses ----

    def dsn(self, *names: str, **query: str) -> str:
        """A multi-host URI over the nodes ``names`` (default: all)."""
        hosts = ",".join(f"{self.host}:{self.ports[n]}" for n in names or self.node_names)
        tail = "&".join(f"{k}={v}" for k, v in query.items())
        return f"postgresql://postgres@{hosts}/postgres" + (f"?{tail}" if tail else "")

    # ---------------------------------------------------------------- stopping ----

    def close(self, timeout: float = 60) -> None:
        """Stops the nodes, then the monitor (each ``pg_autoctl`` stops its Postgres on
        SIGTERM), and removes the directory."""
        try:
            for name in [*self.node_names, "monitor"]:
                proc = self.procs.get(name)
                if proc is None or proc.poll() is not None:
                    continue
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            pg_ctl = os.path.join(self.bindir, "pg_ctl")
            for name in ("monitor", *self.node_names):
                if os.path.exists(os.path.join(self.pgdata(name), "postmaster.pid")):
                    subprocess.run(
                        [
                            *self._as_owner,
                            pg_ctl,
                            "stop",
                            "-D",
                            self.pgdata(name),
                            "-m",
                            "immediate",
                        ],
                        env=self.env,
                        capture_output=True,
                        timeout=60,
                        check=False,
                    )
        finally:
            if self._watchdog is not None:
                if self._watchdog.poll() is None:
                    self._watchdog.kill()
                self._watchdog.wait()
            shutil.rmtree(self.dir, ignore_errors=True)

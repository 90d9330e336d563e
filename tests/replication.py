"""A primary and a hot standby on real servers, for the failover tests.

:class:`Node` is a :class:`ferropg.cluster.TempCluster` with a name (its ``cluster_name``
and the ``application_name`` it streams under) and the operations replication needs:
:meth:`Node.clone_from` (``pg_basebackup``, the node becomes a standby of another),
:meth:`Node.promote`, :meth:`Node.crash` (``pg_ctl stop -m immediate``) and
:meth:`Node.rewind_from` (``pg_rewind``, an old primary rejoins as a standby of the new
one).  Server tools run as the server's OS user (``postgres`` when we are root), as
:mod:`ferropg.cluster` runs them.

:class:`ReplicaPair` is two nodes, ``node_a`` and ``node_b``, one the primary and one a
streaming hot standby of it, with synchronous replication on:

* Every node starts with ``wal_level=replica``, ``hot_standby=on`` and
  ``wal_log_hints=on`` (``pg_rewind`` needs it, from the start).
* The primary's ``synchronous_standby_names`` (``ALTER SYSTEM``, so that
  ``pg_basebackup`` copies it to the standby) names both nodes (``FIRST 1 (node_a,
  node_b)``): whichever node is the primary waits for the other one's flush.
* :meth:`ReplicaPair.fail_over` crashes (or stops) the primary, clears
  ``synchronous_standby_names`` on the standby (a promoted standby inherits it, and with
  its only standby gone every commit would hang), promotes it and waits until it takes
  writes.  :meth:`ReplicaPair.rejoin` brings the old primary back with ``pg_rewind`` as a
  standby of the new one and turns synchronous replication on again once it streams.
* :meth:`ReplicaPair.heal` puts a pair that a failed test left half-done back together.

Every wait polls a state with a deadline (:func:`wait_for`); nothing sleeps blindly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from ferropg.cluster import ClusterError, TempCluster

__all__ = ["Node", "ReplicaPair", "wait_for"]

#: Settings of every node, written to the first node's ``postgresql.conf`` (which
#: ``pg_basebackup`` and ``pg_rewind`` copy): ``pg_rewind``'s crash recovery of a node that
#: went down hard runs a single-user server that sees only the configuration files.
SERVER_SETTINGS = {
    "wal_level": "replica",
    "hot_standby": "on",
    "wal_log_hints": "on",
    "max_wal_senders": "10",
    "wal_keep_size": "256MB",
    # A standby tells its primary at once how far it flushed: commits do not wait for
    # the next status interval.
    "wal_receiver_status_interval": "1s",
    # A standby whose upstream went away retries soon (default 5 s).
    "wal_retrieve_retry_interval": "100ms",
    "jit": "off",
}

#: ``synchronous_standby_names`` of whichever node is the primary.
SYNC_NAMES = "FIRST 1 (node_a, node_b)"


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Polls ``predicate()`` until it returns something true, and returns that; raises
    AssertionError naming ``what`` after ``timeout`` seconds.  A ClusterError from the
    predicate (a server not up yet) counts as false."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = predicate()
        except ClusterError as e:
            value, last = None, e
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last})")
        time.sleep(0.05)


class Node(TempCluster):
    """One server of a replica set, named *name*; a primary until :meth:`clone_from` or
    :meth:`rewind_from` makes it a standby of another node."""

    def __init__(self, name: str) -> None:
        super().__init__(server_settings={"cluster_name": name})
        self.name = name
        #: The node this one streams from, while it is a standby.
        self.upstream: Node | None = None

    def __repr__(self) -> str:
        return f"<Node {self.name} port={self.port} {self.get_status()}>"

    # ---------------------------------------------------------------- addresses

    def conninfo(self, **extra: str) -> str:
        """A libpq conninfo string for a TCP connection as ``postgres``."""
        fields = {"host": self.host, "port": str(self.port), "user": self.user, **extra}
        return " ".join(f"{k}={v}" for k, v in fields.items())

    @property
    def _signal_file(self) -> str:
        return os.path.join(self.data_dir, "standby.signal")

    def start(self, wait: int = 60, *, server_settings: Any = None, **opts: Any) -> None:
        """Starts the server; a standby gets ``primary_conninfo`` naming its upstream and
        streaming under this node's name."""
        settings = dict(server_settings or {})
        if self.upstream is not None and os.path.exists(self._signal_file):
            settings["primary_conninfo"] = self.upstream.conninfo(application_name=self.name)
        super().start(wait, server_settings=settings, **opts)

    def init(self, **settings: Any) -> str:
        """initdb, and :data:`SERVER_SETTINGS` into ``postgresql.conf``."""
        out = super().init(**settings)
        with open(os.path.join(self.data_dir, "postgresql.conf"), "a") as f:
            f.write("\n# tests/replication.py\n")
            for name, value in SERVER_SETTINGS.items():
                f.write(f"{name} = '{value}'\n")
        return out

    # ------------------------------------------------------------------- states

    def in_recovery(self) -> bool:
        return self.sql("SELECT pg_is_in_recovery()", timeout=10) == "t"

    def streaming_to(self, standby: str) -> str | None:
        """The ``sync_state`` of *standby* streaming from this node, None if it is not."""
        row = self.sql(
            "SELECT sync_state FROM pg_stat_replication "
            f"WHERE application_name = '{standby}' AND state = 'streaming'",
            timeout=10,
        )
        return row or None

    # ---------------------------------------------------------- becoming things

    def clone_from(self, primary: Node) -> None:
        """Makes this (not yet initialised) node a hot standby of *primary*, with
        ``pg_basebackup``, and starts it."""
        if self.get_status() != "not-initialized":
            raise ClusterError(f"{self.name} already has a data directory")
        self._init_env()
        self._ensure_rundir()
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        self._give_to_owner(self.data_dir)
        self._run_server_tool(
            [
                self._binary("pg_basebackup"),
                "-d",
                primary.conninfo(application_name=f"{self.name}_basebackup"),
                "-D",
                self.data_dir,
                "-X",
                "stream",
                "-c",
                "fast",
            ],
            timeout=300,
            what="pg_basebackup",
        )
        self._become_standby_of(primary)

    def _become_standby_of(self, primary: Node) -> None:
        open(self._signal_file, "w").close()
        self._give_to_owner(self._signal_file)
        self.upstream = primary
        self.start()

    def crash(self) -> None:
        """Stops the server the hard way (``pg_ctl stop -m immediate``: no shutdown
        checkpoint, and no WAL sent to standbys on the way out), as a crash would."""
        self._run_server_tool(
            [self._binary("pg_ctl"), "stop", "-D", self.data_dir, "-m", "immediate", "-w", "-s"],
            timeout=60,
            what="pg_ctl stop -m immediate",
        )
        self._kill_watchdog()

    def promote(self) -> None:
        """Promotes this standby (``pg_ctl promote``) and waits until it takes writes."""
        self._run_server_tool(
            [self._binary("pg_ctl"), "promote", "-D", self.data_dir, "-w", "-t", "60", "-s"],
            timeout=90,
            what="pg_ctl promote",
        )
        wait_for(lambda: not self.in_recovery(), 30, f"{self.name} to leave recovery")
        self.upstream = None

    def rewind_from(self, source: Node) -> None:
        """Rewinds this stopped old primary onto *source*'s timeline (``pg_rewind``,
        which first finishes crash recovery when the node was not shut down cleanly) and
        starts it as a standby of *source*."""
        if self.get_status() == "running":
            raise ClusterError(f"{self.name} must be stopped before pg_rewind")
        # pg_rewind (before PostgreSQL 16) reads the source's timeline from its control
        # file, which a promotion updates only at its first checkpoint (a spread one):
        # without this it can see no fork and rewind nothing.
        source.sql("CHECKPOINT")
        self._run_server_tool(
            [
                self._binary("pg_rewind"),
                "--target-pgdata",
                self.data_dir,
                "--source-server",
                source.conninfo(dbname="postgres"),
            ],
            timeout=300,
            what="pg_rewind",
        )
        self._become_standby_of(source)


class ReplicaPair:
    """``node_a`` and ``node_b``: a primary and a synchronous hot standby of it."""

    def __init__(self) -> None:
        self.nodes = [Node("node_a"), Node("node_b")]
        self.primary, self.standby = self.nodes
        try:
            self.primary.init()
            self.primary.start()
            # Before the base backup, so that the standby inherits it.
            self._set_sync_names(self.primary, SYNC_NAMES)
            self.standby.clone_from(self.primary)
            self.wait_synchronous()
        except BaseException:
            self.destroy()
            raise

    def __repr__(self) -> str:
        return f"<ReplicaPair primary={self.primary!r} standby={self.standby!r}>"

    # ---------------------------------------------------------------- addresses

    def dsn(self, *nodes: Node, **query: str) -> str:
        """A multi-host URI over *nodes* (default: primary, then standby)."""
        nodes = nodes or (self.primary, self.standby)
        hosts = ",".join(f"{n.host}:{n.port}" for n in nodes)
        tail = "&".join(f"{k}={v}" for k, v in query.items())
        return f"postgresql://postgres@{hosts}/postgres" + (f"?{tail}" if tail else "")

    def by_port(self, port: int) -> Node:
        for node in self.nodes:
            if node.port == port:
                return node
        raise LookupError(f"no node on port {port}")

    # ------------------------------------------------------------------- states

    @staticmethod
    def _set_sync_names(node: Node, value: str | None) -> None:
        if value is None:
            node.sql("ALTER SYSTEM RESET synchronous_standby_names")
        else:
            node.sql(f"ALTER SYSTEM SET synchronous_standby_names = '{value}'")
        before = node.sql("SHOW synchronous_standby_names")
        node.sql("SELECT pg_reload_conf()")
        want = value or ""
        wait_for(
            lambda: node.sql("SHOW synchronous_standby_names") == want,
            10,
            f"{node.name} to load synchronous_standby_names={want!r} (was {before!r})",
        )

    def wait_synchronous(self, timeout: float = 60) -> None:
        """Waits until the standby streams from the primary as its synchronous standby."""
        wait_for(
            lambda: self.primary.streaming_to(self.standby.name) == "sync",
            timeout,
            f"{self.standby.name} to stream synchronously from {self.primary.name}",
        )

    def healthy(self) -> bool:
        """Both nodes up, the primary out of recovery and the standby streaming
        synchronously from it."""
        try:
            return (
                self.primary.get_status() == "running"
                and self.standby.get_status() == "running"
                and not self.primary.in_recovery()
                and self.standby.in_recovery()
                and self.primary.streaming_to(self.standby.name) == "sync"
            )
        except ClusterError:
            return False

    # ------------------------------------------------------------- transitions

    def fail_over(self, *, crash: bool = True) -> None:
        """Takes the primary down (a crash by default, else a clean stop), clears the
        standby's inherited ``synchronous_standby_names`` and promotes it.  Afterwards
        :attr:`primary` is the promoted node and :attr:`standby` the stopped old primary."""
        old, new = self.primary, self.standby
        if crash:
            old.crash()
        else:
            old.stop()
        # Cleared before the promotion: the new primary's first commit must not wait
        # for a standby that is gone.
        self._set_sync_names(new, None)
        new.promote()
        self.primary, self.standby = new, old

    def rejoin(self) -> None:
        """Brings the stopped old primary back, rewound, as a standby of the new one,
        and turns synchronous replication on again once it streams."""
        old, new = self.standby, self.primary
        old.rewind_from(new)
        wait_for(lambda: new.streaming_to(old.name), 60, f"{old.name} to stream from {new.name}")
        self._set_sync_names(new, SYNC_NAMES)
        self.wait_synchronous()

    def heal(self) -> None:
        """Brings a pair that a test left half-way (a node down, no standby) back to a
        primary and a synchronous standby."""
        if self.healthy():
            return
        up = [n for n in self.nodes if n.get_status() == "running"]
        primaries = [n for n in up if not n.in_recovery()]
        if not primaries:
            # No primary: promote a running standby, or start the stopped nodes first.
            for node in self.nodes:
                if node.get_status() != "running":
                    node.start()
            candidates = [n for n in self.nodes if n.in_recovery()]
            if len(candidates) == len(self.nodes):
                self.primary, self.standby = candidates[0], candidates[1]
                self._set_sync_names(self.primary, None)
                self.primary.promote()
                primaries = [self.primary]
            else:
                primaries = [n for n in self.nodes if not n.in_recovery()]
        self.primary = primaries[0]
        self.standby = next(n for n in self.nodes if n is not self.primary)
        if self.standby.get_status() == "running" and not self.standby.in_recovery():
            self.standby.stop()  # a second primary: rewound below
        if self.standby.get_status() != "running":
            self._set_sync_names(self.primary, None)
            self.rejoin()
        else:
            self._set_sync_names(self.primary, SYNC_NAMES)
            self.wait_synchronous()

    def destroy(self) -> None:
        for node in self.nodes:
            try:
                node.destroy()
            except ClusterError:
                pass

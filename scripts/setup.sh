#!/usr/bin/env bash
# Install what `make test` needs (Debian 12; idempotent, quick when all is present).
#
#   * PostgreSQL server binaries, found by python/ferropg/cluster.py (the project's one
#     rule: $PGINSTALLATION, $PGBIN, `pg_config --bindir` if it has postgres and initdb,
#     else the newest /usr/lib/postgresql/*/bin).  If none: apt-get install postgresql
#     postgresql-contrib; the cluster Debian creates and starts on port 5432 is then
#     stopped and set to start manually (it is not deleted).
#   * contrib extensions (hstore, citext, isn): postgresql-contrib.
#   * the `postgres` OS user (ferropg.cluster runs the server as that user when root).
#   * pgbouncer (tests/pgbouncer.py starts its own processes in front of the test
#     cluster): apt-get install pgbouncer.  The system service the package sets up is
#     stopped and disabled; the tests never use it.
#   * pg_auto_failover (tests/auto_failover.py runs a monitor and two nodes with
#     pg_autoctl): apt-get install postgresql-<major>-auto-failover, the major version of
#     the server binaries.
#   * Python packages for the current python3 (only the missing ones):
#     maturin>=1.9,<2, pytest, pytest-timeout, uvloop, hypothesis, ruff, distro, mypy,
#     dbapi-compliance (PEP 249's compliance suite, for ferropg.dbapi's tests), SQLAlchemy,
#     greenlet and alembic (the dialects' tests), psycopg[binary] (the driver our dialects
#     are compared with in scripts/sqlalchemy_suite.sh).
#
# As root it uses apt-get and useradd directly (no sudo).  As another user it only
# reports what is missing for those, and still pip-installs Python packages.
# Environment: PYTHON (default python3), PIP_ARGS (extra `pip install` arguments).
# Exit status 0 when everything is in place afterwards, 1 otherwise.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
IS_ROOT=0
[[ "$(id -u)" == 0 ]] && IS_ROOT=1
MISSING=()

say() { printf 'setup: %s\n' "$*"; }

# The PostgreSQL bin directory, by the project's one rule (python/ferropg/cluster.py,
# standard library only, which the Rust and Python tests use as well); status 2 if none
# (with $PGINSTALLATION/$PGBIN set, that means they point at nothing usable).
find_bindir() {
    "$PYTHON" "$(dirname "$0")/../python/ferropg/cluster.py" --print-bindir 2>/dev/null
}

apt_install() {
    if (( ! IS_ROOT )); then
        MISSING+=("$*")
        say "not root: skipping apt-get install $*"
        return 1
    fi
    if [[ -z "${APT_UPDATED:-}" ]]; then
        say "apt-get update"
        apt-get update -qq
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Debian's postgresql package creates a cluster and starts it on port 5432.  Stop it and
# make it manual so it neither takes the port nor comes back; its data is left alone.
quiet_debian_clusters() {
    command -v pg_lsclusters >/dev/null 2>&1 || return 0
    local ver name rest
    while read -r ver name rest; do
        [[ -n "$ver" && -n "$name" ]] || continue
        say "stopping Debian's auto-created cluster $ver/$name (start.conf -> manual)"
        pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
        if [[ -f "/etc/postgresql/$ver/$name/start.conf" ]]; then
            sed -i -E 's/^[[:space:]]*auto([[:space:]]|$)/manual\1/' \
                "/etc/postgresql/$ver/$name/start.conf"
        fi
    done < <(pg_lsclusters -h 2>/dev/null || true)
}

# ---------------------------------------------------------------- PostgreSQL ----
rc=0
BINDIR="$(find_bindir)" || rc=$?
if (( rc != 0 )) && [[ -n "${PGINSTALLATION:-}${PGBIN:-}" ]]; then
    MISSING+=("usable \$PGINSTALLATION/\$PGBIN")
elif (( rc != 0 )); then
    say "no PostgreSQL server binaries found"
    if apt_install postgresql postgresql-contrib; then
        quiet_debian_clusters
        BINDIR="$(find_bindir)" || BINDIR=""
    fi
    [[ -n "$BINDIR" ]] || MISSING+=("PostgreSQL server")
fi

if [[ -n "$BINDIR" ]]; then
    say "PostgreSQL: $BINDIR ($("$BINDIR/postgres" --version 2>/dev/null | sed 's/^postgres (PostgreSQL) //'))"
    if [[ -x "$BINDIR/pg_config" ]]; then
        SHAREDIR="$("$BINDIR/pg_config" --sharedir)"
    else
        SHAREDIR="/usr/share/postgresql/$(basename "$(dirname "$BINDIR")")"
    fi
    if [[ -f "$SHAREDIR/extension/hstore.control" ]]; then
        say "contrib extensions: present"
    elif apt_install postgresql-contrib && [[ -f "$SHAREDIR/extension/hstore.control" ]]; then
        say "contrib extensions: installed"
    else
        MISSING+=("postgresql-contrib (hstore in $SHAREDIR)")
    fi
    if [[ ! -x "$BINDIR/psql" ]] && ! command -v psql >/dev/null 2>&1; then
        apt_install postgresql-client || MISSING+=("psql")
    fi
fi

# ------------------------------------------------------------- postgres user ----
if id postgres >/dev/null 2>&1; then
    say "OS user postgres: present"
elif (( IS_ROOT )); then
    say "creating OS user postgres"
    useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
        --shell /bin/bash postgres
else
    say "OS user postgres: missing (only needed when the tests run as root)"
fi
if (( IS_ROOT )) && ! command -v setpriv >/dev/null 2>&1 && ! command -v runuser >/dev/null 2>&1; then
    apt_install util-linux || MISSING+=("setpriv/runuser")
fi
# ---------------------------------------------------------------- pgbouncer -----
# tests/pgbouncer.py runs its own pgbouncer processes (as the postgres user when root);
# Debian's package also sets up a system service on port 6432, which we stop and disable.
find_pgbouncer() {
    command -v pgbouncer 2>/dev/null || { [[ -x /usr/sbin/pgbouncer ]] && echo /usr/sbin/pgbouncer; }
}
quiet_pgbouncer_service() {
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        systemctl disable --now pgbouncer >/dev/null 2>&1 || true
    fi
    if [[ -x /etc/init.d/pgbouncer ]]; then
        /etc/init.d/pgbouncer stop >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null 2>&1; then
        update-rc.d pgbouncer disable >/dev/null 2>&1 || true
    fi
}
PGBOUNCER="$(find_pgbouncer || true)"
if [[ -z "$PGBOUNCER" ]]; then
    say "pgbouncer not found"
    if apt_install pgbouncer; then
        quiet_pgbouncer_service
        PGBOUNCER="$(find_pgbouncer || true)"
    fi
fi
if [[ -n "$PGBOUNCER" ]]; then
    say "pgbouncer: $PGBOUNCER ($("$PGBOUNCER" --version 2>/dev/null | head -n1))"
else
    MISSING+=("pgbouncer")
fi

# ---------------------------------------------------------- pg_auto_failover ---
# tests/test_pg_auto_failover.py runs a monitor and two nodes with pg_autoctl (as the
# postgres user when root); the monitor needs the pgautofailover extension built for the
# major version of the server binaries.  The Debian package sets up no service.
find_pg_autoctl() {
    command -v pg_autoctl 2>/dev/null || { [[ -x /usr/bin/pg_autoctl ]] && echo /usr/bin/pg_autoctl; }
}
if [[ -n "$BINDIR" ]]; then
    PG_MAJOR="$("$BINDIR/postgres" --version 2>/dev/null | sed -E 's/^[^0-9]*([0-9]+).*/\1/')"
    have_pg_auto_failover() {
        [[ -n "$(find_pg_autoctl || true)" && -f "$SHAREDIR/extension/pgautofailover.control" ]]
    }
    if have_pg_auto_failover; then
        say "pg_auto_failover: $(find_pg_autoctl) ($(pg_autoctl --version 2>/dev/null | head -n1))"
    elif apt_install "postgresql-$PG_MAJOR-auto-failover" && have_pg_auto_failover; then
        say "pg_auto_failover: installed postgresql-$PG_MAJOR-auto-failover"
    else
        MISSING+=("postgresql-$PG_MAJOR-auto-failover (pg_autoctl)")
    fi
fi

# tests/test_tls.py makes its certificates with the openssl command.
if ! command -v openssl >/dev/null 2>&1; then
    apt_install openssl || MISSING+=("openssl")
fi

# ---------------------------------------------------------------- Python --------
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    apt_install python3 python3-pip python3-venv || true
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    MISSING+=("$PYTHON")
else
    PIP_WANT=()
    maturin_ok() {
        local v
        v="$(maturin --version 2>/dev/null || "$PYTHON" -m maturin --version 2>/dev/null)" || return 1
        v="${v##* }"
        [[ "$v" =~ ^1\.([0-9]+) ]] && (( BASH_REMATCH[1] >= 9 ))
    }
    maturin_ok || PIP_WANT+=("maturin>=1.9,<2")
    # One interpreter start for all import checks (pyenv shims make each one slow).
    read -r -a absent <<< "$("$PYTHON" -c '
import importlib.util
wanted = {"pytest": "pytest", "pytest_timeout": "pytest-timeout", "uvloop": "uvloop",
          "hypothesis": "hypothesis", "distro": "distro", "mypy": "mypy",
          "dbapi20": "dbapi-compliance==1.15.0", "sqlalchemy": "SQLAlchemy==2.0.59",
          "greenlet": "greenlet", "alembic": "alembic==1.20.1",
          "psycopg": "psycopg[binary]==3.3.9"}
print(" ".join(pkg for mod, pkg in wanted.items() if importlib.util.find_spec(mod) is None))')"
    PIP_WANT+=("${absent[@]}")
    command -v ruff >/dev/null 2>&1 || "$PYTHON" -m ruff --version >/dev/null 2>&1 \
        || PIP_WANT+=("ruff")

    if (( ${#PIP_WANT[@]} == 0 )); then
        say "Python packages ($("$PYTHON" --version 2>&1)): all present"
    else
        if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
            apt_install python3-pip || true
        fi
        extra=()
        # Debian's own python3 refuses pip installs (PEP 668) outside a virtualenv.
        marker="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')/EXTERNALLY-MANAGED"
        in_venv="$("$PYTHON" -c 'import sys; print(int(sys.prefix != sys.base_prefix))')"
        if [[ -f "$marker" && "$in_venv" == 0 ]]; then
            extra+=(--break-system-packages)
        fi
        say "pip install ${PIP_WANT[*]}"
        # shellcheck disable=SC2086
        if ! "$PYTHON" -m pip install -q "${extra[@]}" ${PIP_ARGS:-} "${PIP_WANT[@]}"; then
            MISSING+=("Python packages: ${PIP_WANT[*]}")
        fi
    fi
fi

command -v cargo >/dev/null 2>&1 || say "note: cargo not found (maturin needs a Rust toolchain: https://rustup.rs)"

if (( ${#MISSING[@]} )); then
    say "MISSING: $(IFS=';'; echo "${MISSING[*]}")"
    exit 1
fi
say "ok"

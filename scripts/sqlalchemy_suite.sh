#!/usr/bin/env bash
# sqlalchemy_suite.sh -- SQLAlchemy 2.0.59's own dialect tests on our two dialects, each run
# beside psycopg 3's, and the comparison our acceptance bar asks for: every test that passes
# for psycopg passes for ferropg.
#
# USAGE
#   scripts/sqlalchemy_suite.sh [--runs NAME,...] [--] [pytest args...]
#     scripts/sqlalchemy_suite.sh                      # all four runs + comparison
#     scripts/sqlalchemy_suite.sh --runs psycopg,ferropg -- -k hstore   # a subset
#     scripts/sqlalchemy_suite.sh --compare-only       # compare the last results again
#
# Runs (NAME: dburi): psycopg: postgresql+psycopg://, ferropg: postgresql+ferropg://,
# psycopg_async: postgresql+psycopg_async://, ferropg_async: postgresql+ferropg_async://.
#
# What it does, as the bar asks:
#   1. fetches the SQLAlchemy==2.0.59 sdist with pip once into $FERROPG_CACHE_DIR (default
#      $XDG_CACHE_HOME/ferropg or ~/.cache/ferropg), checks its SHA-256, unpacks it there;
#   2. starts a temporary PostgreSQL (python/ferropg/cluster.py --serve) with
#      max_prepared_transactions=10 and, before each run, a fresh UTF8 database `test` set up
#      as the sdist's README.unittests.rst says (schemas test_schema and test_schema_2,
#      hstore and citext, default_text_search_config english);
#   3. runs pytest from the sdist root on test/dialect/test_suite.py and test/dialect/postgresql/
#      with SQLAlchemy's own conftest, plugin and requirements class (no --requirements):
#      its test/conftest.py puts the sdist's lib/ first on sys.path, so the SQLAlchemy under
#      test is the sdist's pure-Python 2.0.59 (the same release .venv has installed);
#      our only additions are --junitxml, -p no:cacheprovider, --maxfail=0 (setup.cfg's
#      --maxfail=250 would cut a failing run short) and pytest-timeout's --timeout;
#   4. compares with tools/sqlalchemy_suite_compare.py: psycopg against ferropg and
#      psycopg_async against ferropg_async.
#
# Environment: PYTHON (default: the project's .venv, else python3; it needs ferropg, pytest,
# pytest-timeout, psycopg, greenlet), SA_SUITE_OUT (default build/sqlalchemy-suite),
# SA_SUITE_RUN_TIMEOUT (seconds per run, default 3600), SA_SUITE_TEST_TIMEOUT (seconds per
# test, default 300).  Results in the out dir: NAME.xml (junit), NAME.log (pytest output),
# times.tsv, cluster.log, report.txt, and the lists not-passed-*.tsv and driver-name-*.tsv.
#
# EXIT STATUS
#   0  every test that passed for psycopg passed for ferropg (each pair that ran)
#   1  some did not (listed in report.txt; tests whose outcome for ferropg SQLAlchemy decides
#      by driver name are listed apart and do not count: tools/sqlalchemy_suite_compare.py)
#   2  the suite could not be run (download, hash, PostgreSQL, a run without results)
set -euo pipefail

SA_VERSION=2.0.59
# SHA-256 of sqlalchemy-2.0.59.tar.gz as published on PyPI.
SA_SHA256=9dd42e979a9ca2a71cf827b9bda61a8322ab4e3be28ec68a6166a9c839064784
TESTS=(test/dialect/test_suite.py test/dialect/postgresql/)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/project_python.sh
source "$ROOT/scripts/project_python.sh"
CACHE="${FERROPG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferropg}"
OUT="${SA_SUITE_OUT:-$ROOT/build/sqlalchemy-suite}"
RUN_TIMEOUT="${SA_SUITE_RUN_TIMEOUT:-3600}"
TEST_TIMEOUT="${SA_SUITE_TEST_TIMEOUT:-300}"
ALL_RUNS=(psycopg ferropg psycopg_async ferropg_async)
SA_DIR="$CACHE/sqlalchemy-$SA_VERSION"

say() { printf 'sqlalchemy-suite: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

RUNS=("${ALL_RUNS[@]}")
COMPARE_ONLY=0
PYTEST_EXTRA=()
while (($#)); do
    case "$1" in
    --runs) IFS=, read -r -a RUNS <<<"$2"; shift 2 ;;
    --compare-only) COMPARE_ONLY=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; PYTEST_EXTRA=("$@"); break ;;
    *) PYTEST_EXTRA=("$@"); break ;;
    esac
done
for name in "${RUNS[@]}"; do
    [[ " ${ALL_RUNS[*]} " == *" $name "* ]] || die "unknown run '$name' (${ALL_RUNS[*]})"
done

compare() {
    "$PYTHON" "$ROOT/tools/sqlalchemy_suite_compare.py" "$OUT" "$SA_DIR"
}
if ((COMPARE_ONLY)); then
    compare
    exit $?
fi

# ------------------------------------------------------------------ the sdist ----
# Unpacked once: $CACHE/sqlalchemy-2.0.59/ (pytest writes only __pycache__ there).
fetch_sdist() {
    local tarball="$CACHE/sqlalchemy-$SA_VERSION.tar.gz" tmp
    [[ -f "$SA_DIR/test/dialect/test_suite.py" ]] && return 0
    mkdir -p "$CACHE"
    if [[ ! -f "$tarball" ]]; then
        say "downloading the SQLAlchemy==$SA_VERSION sdist into $CACHE"
        tmp="$(mktemp -d "$CACHE/download.XXXXXX")"
        "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-binary :all: \
            --no-deps --dest "$tmp" "SQLAlchemy==$SA_VERSION" >&2 || die "pip download failed"
        mv "$tmp/sqlalchemy-$SA_VERSION.tar.gz" "$tarball" || die "no sdist in pip's download"
        rm -rf "$tmp"
    fi
    echo "$SA_SHA256  $tarball" | sha256sum --check --status \
        || die "$tarball: SHA-256 is not $SA_SHA256"
    tmp="$(mktemp -d "$CACHE/unpack.XXXXXX")"
    tar -xzf "$tarball" -C "$tmp"
    rm -rf "$SA_DIR"
    mv "$tmp/sqlalchemy-$SA_VERSION" "$SA_DIR"
    rm -rf "$tmp"
}

# ------------------------------------------------------------------ PostgreSQL ----
# cluster.py --serve: a "ready" line, then one reply line ("ok"/"err" + payload) per request
# line; fields tab-separated with backslash, tab and newline escaped.  Closing its stdin
# stops and removes the cluster (its watchdog does so too if we are killed).
start_cluster() {
    coproc CLUSTER {
        exec "$PYTHON" "$ROOT/python/ferropg/cluster.py" --serve \
            -c max_prepared_transactions=10 2>"$OUT/cluster.log"
    }
    # bash unsets CLUSTER and CLUSTER_PID when the coprocess ends: keep copies.
    CLUSTER_IN=${CLUSTER[1]} CLUSTER_OUT=${CLUSTER[0]} SERVER_PID=$CLUSTER_PID
    local tag sockdir datadir bindir logfile
    IFS=$'\t' read -r -u "$CLUSTER_OUT" tag DB_HOST DB_PORT sockdir datadir bindir logfile \
        DB_USER || die "the cluster did not start (see $OUT/cluster.log)"
    [[ "$tag" == ready ]] || die "cluster: unexpected '$tag' (see $OUT/cluster.log)"
    say "PostgreSQL $("$bindir/postgres" --version | sed 's/^postgres (PostgreSQL) //') on $DB_HOST:$DB_PORT (log: $logfile)"
}

stop_cluster() {
    [[ -n "${SERVER_PID:-}" ]] || return 0
    exec {CLUSTER_IN}>&-
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# Run SQL by psql (as the superuser, over the socket); psql meta-commands work.
cluster_sql() {
    local query="$1" reply payload
    query="${query//\\/\\\\}"
    query="${query//$'\t'/\\t}"
    query="${query//$'\n'/\\n}"
    printf 'sql\t%s\n' "$query" >&"$CLUSTER_IN"
    IFS= read -r -u "$CLUSTER_OUT" reply || die "the cluster went away"
    payload="${reply#*$'\t'}"
    [[ "${reply%%$'\t'*}" == ok ]] || die "cluster: ${payload//\\n/$'\n'}"
}

# The user of README.unittests.rst's docker example (POSTGRES_USER=scott: a superuser,
# password tiger); some tests put the URL's password into URLs of their own.
create_user() {
    cluster_sql "CREATE ROLE scott SUPERUSER LOGIN PASSWORD 'tiger';"
}

# A new, empty `test` database as README.unittests.rst describes ("the database chosen for
# tests must be entirely empty"), so each run starts from the same state whatever the one
# before it left behind (tables; prepared transactions, which would keep it from being
# dropped and can only be rolled back from inside it).  Beyond the README: a collation
# "en_US" (ICU), which a few array tests name and a cluster made with locale C lacks.
fresh_database() {
    cluster_sql "$(cat <<'SQL'
SELECT count(*) > 0 AS prepared FROM pg_prepared_xacts WHERE database = 'test'
\gset
\if :prepared
\connect test
SELECT format('ROLLBACK PREPARED %L', gid) FROM pg_prepared_xacts WHERE database = 'test'
\gexec
\connect postgres
\endif
DROP DATABASE IF EXISTS test WITH (FORCE);
CREATE DATABASE test OWNER scott ENCODING 'UTF8' TEMPLATE template0;
ALTER DATABASE test SET default_text_search_config = 'pg_catalog.english';
\connect test
CREATE SCHEMA test_schema;
CREATE SCHEMA test_schema_2;
CREATE EXTENSION hstore;
CREATE EXTENSION citext;
DO $$ BEGIN
    CREATE COLLATION "en_US" (provider = icu, locale = 'en-US');
EXCEPTION WHEN feature_not_supported THEN
    RAISE WARNING 'no ICU: collation en_US not created';
END $$;
SQL
)"
}

# ------------------------------------------------------------------------ runs ----
run_suite() {
    local name="$1" url="postgresql+$1://scott:tiger@$DB_HOST:$DB_PORT/test" start end rc=0
    fresh_database
    say "run $name: pytest --dburi $url (log: $OUT/$name.log)"
    start=$(date +%s)
    (
        cd "$SA_DIR"
        unset "${!PG@}"  # libpq's variables would change what psycopg connects to
        exec timeout --kill-after=30 "$RUN_TIMEOUT" "$PYTHON" -m pytest "${TESTS[@]}" \
            --dburi "$url" --junitxml "$OUT/$name.xml" -p no:cacheprovider --maxfail=0 \
            --timeout "$TEST_TIMEOUT" "${PYTEST_EXTRA[@]}"
    ) >"$OUT/$name.log" 2>&1 || rc=$?
    end=$(date +%s)
    printf '%s\t%s\t%s\n' "$name" "$((end - start))" "$rc" >>"$OUT/times.tsv"
    say "run $name: $((end - start)) s, pytest exit $rc: $(tail -n 1 "$OUT/$name.log")"
    # pytest exits 1 when tests failed; anything else means the run itself went wrong.
    if ((rc != 0 && rc != 1)) || [[ ! -s "$OUT/$name.xml" ]]; then
        say "run $name did not complete (exit $rc): see $OUT/$name.log"
        return 1
    fi
}

main() {
    mkdir -p "$OUT"
    for name in "${RUNS[@]}"; do rm -f "$OUT/$name.xml" "$OUT/$name.log"; done
    : >"$OUT/times.tsv"
    fetch_sdist
    say "SQLAlchemy under test: $(cd "$SA_DIR" && "$PYTHON" -c \
        'import sys; sys.path.insert(0, "lib"); import sqlalchemy as s; print(s.__version__, s.__file__)')"
    "$PYTHON" -c 'import ferropg, psycopg, greenlet, pytest_timeout' \
        || die "$PYTHON lacks ferropg, psycopg, greenlet or pytest-timeout (make venv)"
    say "psycopg $("$PYTHON" -c 'import psycopg; print(psycopg.__version__)')"
    start_cluster
    trap stop_cluster EXIT
    create_user
    local failed=0
    for name in "${RUNS[@]}"; do
        run_suite "$name" || failed=1
    done
    stop_cluster
    ((failed == 0)) || die "a run did not complete"
    local rc=0
    compare || rc=$?
    # The whole harness: download/unpack (first time), cluster, the runs, comparison.
    printf 'total\t%s\t%s\n' "$SECONDS" "$rc" >>"$OUT/times.tsv"
    say "wall time: $SECONDS s"
    return "$rc"
}

main

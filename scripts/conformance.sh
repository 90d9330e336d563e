#!/usr/bin/env bash
# conformance.sh -- run asyncpg 0.32.0's own test suite against ferropg (the CI ratchet).
#
# USAGE
#   scripts/conformance.sh [runner options] [--] [pytest args...]
#     scripts/conformance.sh                          # full suite + ratchet (make conformance)
#     scripts/conformance.sh --update                 # rewrite tests/conformance/expected-pass.txt
#     scripts/conformance.sh tests/test_record.py -k repr   # a subset (checks only what ran)
#     scripts/conformance.sh --help                   # all runner options
#
# It runs tests/conformance/runner.py with $PYTHON (default: the project's .venv, else
# python3), which must import ferropg, pytest and distro.  The runner fetches the
# asyncpg==0.32.0 sdist with pip into $FERROPG_CACHE_DIR (default $XDG_CACHE_HOME/ferropg or
# ~/.cache/ferropg), checks its SHA-256, runs its tests/ with `import asyncpg` aliased to
# ferropg, prints "SUMMARY target=ferropg total=N passed=..." and compares the passing tests
# with tests/conformance/expected-pass.txt.  Results: build/conformance/.
#
# EXIT STATUS
#   0  every test in expected-pass.txt passed (many other suite tests may fail)
#   1  a test in expected-pass.txt did not pass (listed on stdout)
#   2  the suite could not be run (download, hash, PostgreSQL, imports, timeout)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/project_python.sh
source "$ROOT/scripts/project_python.sh"
exec "$PYTHON" "$ROOT/tests/conformance/runner.py" "$@"

# ferropg: developer entry points. `make help` lists them.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CARGO ?= cargo
# The Rust face's type features (crates/ferropg/Cargo.toml), tested in one build.
# Selected with --workspace as ferropg/<feature>, so that tokio, rustls and the rest
# keep the features the workspace build gave them and are not built again.
TYPE_FEATURES := $(addprefix ferropg/,with-chrono-0_4 with-time-0_3 with-jiff-0_2 with-uuid-1 with-serde_json-1 with-cidr-0_2 with-geo-types-0_7 with-bit-vec-0_6 with-eui48-1 array-impls)
# The Rust face's root-certificate features (sslrootcert=system), tested in the same
# build as the type features: tests/tls.rs has tests for each.
TLS_FEATURES := ferropg/native-roots ferropg/webpki-roots
# Extension builds: debug for tests (fast to build), release for benchmarks and demos.
MATURIN_FLAGS ?=

.PHONY: help setup venv build build-release demo test test-rust test-python conformance sqlalchemy-suite soak lint gen fmt fuzz-check fuzz-smoke bench bench-rust clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: $(PY)  ## install what is missing: PostgreSQL server, Python tools into .venv (idempotent)
	PYTHON=$(PY) bash scripts/setup.sh

$(PY):
	$(PYTHON) -m venv $(VENV)

venv: $(PY)  ## the project's virtualenv with maturin, pytest, uvloop, hypothesis, ruff, mypy
	@$(PY) -c 'import maturin, pytest, pytest_timeout, uvloop, hypothesis, distro, mypy, asyncpg, dbapi20, sqlalchemy, greenlet, alembic, psycopg' 2>/dev/null || \
		$(PY) -m pip install --quiet --disable-pip-version-check \
			'maturin>=1.9,<2' pytest pytest-timeout uvloop hypothesis ruff distro mypy asyncpg==0.32.0 \
			dbapi-compliance==1.15.0 SQLAlchemy==2.0.59 greenlet alembic==1.20.1 \
			'psycopg[binary]==3.3.9'

build: venv  ## build the extension into the virtualenv (debug)
	$(VENV)/bin/maturin develop --quiet $(MATURIN_FLAGS)

build-release: venv  ## build the extension into the virtualenv (release)
	$(VENV)/bin/maturin develop --quiet --release $(MATURIN_FLAGS)

demo: setup build-release  ## run examples/python/tour.py (temporary cluster unless PGDSN/PGHOST is set)
	$(PY) examples/python/tour.py

test: setup build  ## every test: lints, cargo test, fuzz smoke, pytest, the asyncpg-suite ratchet, SQLAlchemy's suite
	$(MAKE) lint
	$(MAKE) test-rust
	$(MAKE) fuzz-check
	$(MAKE) test-python
	$(MAKE) conformance
	$(MAKE) sqlalchemy-suite

test-rust:  ## cargo tests (integration tests start their own PostgreSQL; tests/examples.rs runs examples/rust/), the type and root-certificate features' tests in one more build, and a publish dry run
	$(CARGO) test --workspace --quiet
	$(CARGO) test --workspace --quiet --features "$(TYPE_FEATURES) $(TLS_FEATURES)" --test type_features --test tls
	@# The dry run verifies ferropg against the ferropg-core it just packaged, which
	@# cargo takes for a registry crate: its unpacked copy and its build are never
	@# refreshed for the same version. Both are dropped first; the builds go to a
	@# target directory of their own.
	rm -rf "$${CARGO_HOME:-$$HOME/.cargo}"/registry/src/-*/ferropg-*
	$(CARGO) clean --quiet -p ferropg-core --target-dir target/publish
	$(CARGO) publish --dry-run --workspace --quiet --allow-dirty --target-dir target/publish

test-python:  ## pytest against a temporary cluster, on asyncio and uvloop
	$(PY) -m pytest -q tests

conformance:  ## asyncpg 0.32.0's own test suite; fails if a test in tests/conformance/expected-pass.txt stops passing
	PYTHON=$(PY) bash scripts/conformance.sh --log-only $(CONFORMANCE_ARGS)

sqlalchemy-suite:  ## SQLAlchemy 2.0.59's dialect tests on postgresql+ferropg(_async) beside psycopg; fails if a test passes for psycopg only
	PYTHON=$(PY) bash scripts/sqlalchemy_suite.sh $(SQLALCHEMY_SUITE_ARGS)

soak: setup build-release  ## leak soak, both faces: RSS and descriptors over 1M queries, 10k connects, 100k errors, 100k statements (make test runs a tenth)
	$(PY) tests/soak.py $(SOAK_ARGS)
	FERROPG_SOAK_SCALE=1 $(CARGO) test --release --quiet -p ferropg --test soak -- --nocapture

lint:  ## rustfmt, clippy with warnings as errors (also with the type and root features), the aws-lc-rs build checked, rustdoc with warnings as errors, ruff, every generator's --check, stubtest of _native
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --quiet -- -D warnings
	$(CARGO) clippy --workspace --all-targets --quiet --features "$(TYPE_FEATURES) $(TLS_FEATURES)" -- -D warnings
	$(CARGO) check -p ferropg --quiet --no-default-features --features aws-lc-rs
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --quiet --no-deps -p ferropg-core -p ferropg --features "ferropg/native-roots ferropg/webpki-roots"
	$(VENV)/bin/ruff check python tests tools examples benches
	$(VENV)/bin/ruff format --check python tests tools examples benches
	$(PY) tools/gen_sqlstate.py --check
	$(PY) tools/gen_types.py --check
	$(PY) -m mypy.stubtest ferropg._native

gen:  ## regenerate everything that is generated (SQLSTATE tables, the type catalogue)
	$(PY) tools/gen_sqlstate.py
	$(PY) tools/gen_types.py

fmt:  ## format Rust and Python sources
	$(CARGO) fmt --all
	$(VENV)/bin/ruff format python tests tools examples benches

fuzz-check:  ## type-check the fuzz targets; with cargo-fuzz present, run each for 10 s
	bash scripts/fuzz.sh smoke

bench: setup build-release  ## side-by-side benchmarks: async (asyncpg, psycopg + psycopg_pool, psqlpy), the same through pgbouncer (tiny, pool), and sync (psycopg, psycopg2, pg8000), with pgbench (see benches/)
	@$(PY) -c 'import psycopg, psycopg_pool, psqlpy, psycopg2, pg8000' 2>/dev/null || \
		$(PY) -m pip install --quiet --disable-pip-version-check 'psycopg[binary]' psycopg_pool \
			psqlpy psycopg2-binary pg8000
	$(PY) benches/run.py $(BENCH_ARGS)
	$(PY) benches/run.py --pgbouncer $(BENCH_PGBOUNCER_ARGS)
	$(PY) benches/sync_run.py $(SYNC_BENCH_ARGS)

bench-rust:  ## the Rust face beside tokio-postgres and sqlx, one release binary, 3 rounds (BENCH_RUST_ARGS=--quick: smoke run); needs the server binaries (make setup)
	$(CARGO) run --release --quiet -p ferropg-bench --features peers -- $(BENCH_RUST_ARGS)

clean:  ## remove build output
	$(CARGO) clean
	rm -rf $(VENV)

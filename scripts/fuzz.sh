#!/usr/bin/env bash
# Fuzzing ferropg-core with cargo-fuzz (libFuzzer), on the stable toolchain.
#
#   scripts/fuzz.sh check                 type-check the fuzz crate (plain stable cargo)
#   scripts/fuzz.sh smoke                 check, then build every target and run each for
#                                         FUZZ_SMOKE_SECONDS (10) seconds
#   scripts/fuzz.sh run TARGET SECONDS [LIBFUZZER_ARGS...]
#                                         build and run one target for SECONDS seconds
#   scripts/fuzz.sh list                  the targets
#
# Stable Rust: cargo-fuzz's default AddressSanitizer needs `-Zsanitizer`, a nightly-only
# flag. ferropg-core has no `unsafe`, so the targets are built with `-s none` (coverage
# instrumentation only, stable `-C` flags) plus `-a` (debug assertions, which also turn
# on integer-overflow checks). FUZZ_SANITIZER=address brings ASan back on stable by
# setting RUSTC_BOOTSTRAP=1 for that build (about 4x fewer executions per second).
#
# Environment:
#   FUZZ_REQUIRED=1        fail when cargo-fuzz is missing and cannot be installed
#                          (otherwise smoke stops after `check` with a message, exit 0)
#   FUZZ_INSTALL=0         never run `cargo install cargo-fuzz`
#   CARGO_FUZZ_VERSION     the cargo-fuzz version to install (default 0.13.2)
#   FUZZ_SMOKE_SECONDS     seconds per target in smoke mode (default 10)
#   FUZZ_TARGETS           space-separated targets for smoke mode (default: all)
#   FUZZ_SANITIZER         none (default) or address
#   FUZZ_CORPUS            a corpus directory to keep and grow (run mode); by default the
#                          seeds of fuzz/seeds/TARGET are copied into a temporary one, so
#                          the repository is never written to (crash inputs excepted:
#                          they land in fuzz/artifacts/TARGET/, which git ignores)
#
# Seeds come from fuzz/seeds/TARGET/, a libFuzzer dictionary from fuzz/dicts/TARGET.dict.
set -euo pipefail

cd "$(dirname "$0")/.."

FUZZ_DIR=fuzz
TARGET_DIR=fuzz/target
SANITIZER=${FUZZ_SANITIZER:-none}
# Instrumented builds; a sanitizer build gets its own directory so that switching back
# and forth does not rebuild everything each time.
BUILD_DIR=$TARGET_DIR
if [[ $SANITIZER != none ]]; then
    BUILD_DIR=$TARGET_DIR/sanitizer-$SANITIZER
fi
SMOKE_SECONDS=${FUZZ_SMOKE_SECONDS:-10}
CARGO_FUZZ_VERSION=${CARGO_FUZZ_VERSION:-0.13.2}
# Per-input limits: a slow or memory-hungry input is a finding too.
LIBFUZZER_LIMITS=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1)

TMP_DIRS=()
cleanup() {
    local d
    for d in "${TMP_DIRS[@]+"${TMP_DIRS[@]}"}"; do
        rm -rf -- "$d"
    done
}
trap cleanup EXIT

say() { printf 'fuzz: %s\n' "$*" >&2; }

all_targets() {
    local f
    for f in "$FUZZ_DIR"/fuzz_targets/*.rs; do
        basename "$f" .rs
    done
}

build_flags() {
    # Release build with debug assertions (so integer overflow panics), all targets in one dir.
    printf '%s\n' -O -a -s "$SANITIZER" --target-dir "$BUILD_DIR"
}

with_sanitizer_env() {
    if [[ $SANITIZER != none ]] && ! rustc --version | grep -q nightly; then
        RUSTC_BOOTSTRAP=1 "$@"
    else
        "$@"
    fi
}

cmd_check() {
    local t0=$SECONDS
    cargo check --manifest-path "$FUZZ_DIR/Cargo.toml" --bins --target-dir "$TARGET_DIR"
    say "check took $((SECONDS - t0)) s"
}

# Returns 0 when `cargo fuzz` works (installing it if allowed), 1 otherwise.
ensure_cargo_fuzz() {
    if cargo fuzz --version >/dev/null 2>&1; then
        say "using $(cargo fuzz --version)"
        return 0
    fi
    if [[ ${FUZZ_INSTALL:-1} == 0 ]]; then
        say "cargo-fuzz is not installed and FUZZ_INSTALL=0"
        return 1
    fi
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io"
    local t0=$SECONDS
    if cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"; then
        say "cargo-fuzz install took $((SECONDS - t0)) s"
        cargo fuzz --version >/dev/null 2>&1 && return 0
        say "cargo-fuzz installed but 'cargo fuzz' does not run (is ~/.cargo/bin on PATH?)"
    else
        say "cargo install cargo-fuzz failed after $((SECONDS - t0)) s"
    fi
    return 1
}

no_cargo_fuzz() {
    if [[ ${FUZZ_REQUIRED:-0} == 1 ]]; then
        say "FUZZ_REQUIRED=1: failing without cargo-fuzz"
        exit 1
    fi
    say "skipping the fuzz runs: cargo-fuzz is not available (set FUZZ_REQUIRED=1 to fail instead)"
    exit 0
}

# Builds the given targets (all of them when none is given) in one cargo invocation.
build() {
    local t0=$SECONDS flags
    mapfile -t flags < <(build_flags)
    if (($# == 1)); then
        with_sanitizer_env cargo fuzz build "${flags[@]}" "$1"
    else
        with_sanitizer_env cargo fuzz build "${flags[@]}"
    fi
    say "build (sanitizer: $SANITIZER) took $((SECONDS - t0)) s"
}

print_artifacts() {
    local target=$1 since=$2 f
    [[ -d $FUZZ_DIR/artifacts/$target ]] || return 0
    while IFS= read -r f; do
        say "crash input $f ($(wc -c <"$f") bytes), hex:"
        od -An -tx1 -v "$f" | tr -d ' \n' | head -c 4096 >&2
        printf '\n' >&2
    done < <(find "$FUZZ_DIR/artifacts/$target" -type f -newer "$since" 2>/dev/null)
}

# run_target TARGET SECONDS [LIBFUZZER_ARGS...]: the target must be built already.
run_target() {
    local target=$1 seconds=$2
    shift 2
    local seeds=$FUZZ_DIR/seeds/$target corpus stamp flags
    if [[ -n ${FUZZ_CORPUS:-} ]]; then
        corpus=$FUZZ_CORPUS
        mkdir -p "$corpus"
    else
        corpus=$(mktemp -d "${TMPDIR:-/tmp}/ferropg-fuzz-$target.XXXXXX")
        TMP_DIRS+=("$corpus")
    fi
    if [[ -d $seeds ]]; then
        cp -- "$seeds"/* "$corpus"/ 2>/dev/null || true
    fi
    stamp=$(mktemp "${TMPDIR:-/tmp}/ferropg-fuzz-stamp.XXXXXX")
    TMP_DIRS+=("$stamp")
    mkdir -p "$FUZZ_DIR/artifacts/$target"
    mapfile -t flags < <(build_flags)
    local dict=()
    if [[ -f $FUZZ_DIR/dicts/$target.dict ]]; then
        dict=(-dict="$FUZZ_DIR/dicts/$target.dict")
    fi
    say "running $target for $seconds s (corpus $corpus)"
    local t0=$SECONDS rc=0
    with_sanitizer_env cargo fuzz run "${flags[@]}" "$target" "$corpus" -- \
        -max_total_time="$seconds" "${LIBFUZZER_LIMITS[@]}" "${dict[@]+"${dict[@]}"}" "$@" || rc=$?
    if ((rc != 0)); then
        say "$target FAILED (exit $rc) after $((SECONDS - t0)) s"
        print_artifacts "$target" "$stamp"
        return "$rc"
    fi
    say "$target ran $((SECONDS - t0)) s without a crash"
}

cmd_smoke() {
    local t_all=$SECONDS
    cmd_check
    ensure_cargo_fuzz || no_cargo_fuzz
    local targets
    if [[ -n ${FUZZ_TARGETS:-} ]]; then
        read -r -a targets <<<"$FUZZ_TARGETS"
    else
        mapfile -t targets < <(all_targets)
    fi
    build
    local failed=() t
    for t in "${targets[@]}"; do
        run_target "$t" "$SMOKE_SECONDS" || failed+=("$t")
    done
    say "smoke took $((SECONDS - t_all)) s in all"
    if ((${#failed[@]})); then
        say "crashed: ${failed[*]}"
        exit 1
    fi
    say "all ${#targets[@]} targets ran ${SMOKE_SECONDS} s each without a crash"
}

cmd_run() {
    if (($# < 2)) || ! [[ $2 =~ ^[0-9]+$ ]]; then
        say "usage: scripts/fuzz.sh run TARGET SECONDS [LIBFUZZER_ARGS...]"
        exit 2
    fi
    local target=$1
    if [[ ! -f $FUZZ_DIR/fuzz_targets/$target.rs ]]; then
        say "unknown target $target; targets: $(all_targets | tr '\n' ' ')"
        exit 2
    fi
    FUZZ_REQUIRED=1
    ensure_cargo_fuzz || no_cargo_fuzz
    build "$target"
    run_target "$@"
}

case ${1:-} in
check) cmd_check ;;
smoke) cmd_smoke ;;
run)
    shift
    cmd_run "$@"
    ;;
list) all_targets ;;
*)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac

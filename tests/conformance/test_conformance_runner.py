"""Unit tests of the asyncpg-suite conformance runner (no PostgreSQL, no download)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).resolve().parent


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_conformance_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


runner = _load("runner")
# Without FERROPG_CONFORMANCE_TARGET in the environment, importing the plugin aliases nothing.
plugin = _load("alias_plugin")


def test_parse_args_splits_runner_and_pytest_arguments() -> None:
    opts = runner.parse_args(
        ["--update", "--retries", "2", "--test-timeout=5", "tests/test_x.py", "-k", "a", "--update"]
    )
    assert opts.update and opts.retries == 2 and opts.test_timeout == 5
    assert opts.pytest_args == ["tests/test_x.py", "-k", "a", "--update"]
    opts = runner.parse_args(["--netns", "no", "--", "--update"])
    assert opts.netns == "no" and not opts.update and opts.pytest_args == ["--update"]
    assert runner.parse_args([]).pytest_args == []


def test_compare_full_run() -> None:
    results = {
        "t.py::a": runner.Result("passed", 0.1, ""),
        "t.py::b": runner.Result("failed", 0.1, "boom"),
        "t.py::d": runner.Result("passed", 0.1, ""),
    }
    r = runner.compare(["t.py::a", "t.py::b", "t.py::c"], results, partial=False)
    assert r.regressions == [("t.py::b", "failed", "boom"), ("t.py::c", "missing", "no result")]
    assert r.newly_passing == ["t.py::d"] and r.flaky == [] and r.not_run == 0
    assert r.updated == ["t.py::a", "t.py::d"]


def test_compare_partial_run_and_collection_errors() -> None:
    results = {
        "f1.py::a": runner.Result("failed", 0.1, "boom"),
        "f2.py::<COLLECTION>": runner.Result("error", 0.0, "ImportError: x"),
    }
    r = runner.compare(["f1.py::a", "f2.py::b", "f3.py::c"], results, partial=True)
    assert [x[0] for x in r.regressions] == ["f1.py::a", "f2.py::b"]
    assert r.regressions[1][2] == "module not collected: ImportError: x"
    assert r.not_run == 1
    assert r.updated == ["f3.py::c"]  # tests outside the partial run stay listed


def test_compare_flaky_tests_are_not_regressions() -> None:
    results = {"t.py::a": runner.Result("failed", 0.1, "flake")}
    r = runner.compare(["t.py::a"], results, partial=False, passed_on_retry={"t.py::a"})
    assert r.regressions == [] and r.flaky == [("t.py::a", "failed", "flake")]
    assert r.updated == ["t.py::a"]
    assert "RATCHET ok" in runner.ratchet_report(r, Path("x.txt"), 1)[-1]


def test_expected_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "expected-pass.txt"
    runner.write_expected(path, ["b::y", "a::x", "b::y"])
    text = path.read_text()
    assert text.startswith("#") and text.endswith("a::x\nb::y\n")
    path.write_text(text + "\n  # a comment\n")
    assert runner.load_expected(path) == ["a::x", "b::y"]
    assert runner.load_expected(tmp_path / "missing.txt") == []


def test_summary_line_and_results_file(tmp_path: Path) -> None:
    tsv = tmp_path / "results.tsv"
    tsv.write_text("a::x\tpassed\t0.1\t\nb::<COLLECTION>\terror\t0.000\tImportError\nbad line\n")
    results = runner.load_results(tsv)
    assert runner.summary_line("ferropg", results, 12.3, 1) == (
        "SUMMARY target=ferropg total=2 passed=1 failed=0 skipped=0 errors=1 xfailed=0 "
        "xpassed=0 wall=12s pytest_rc=1"
    )


def test_sdist_hash_is_checked(tmp_path: Path) -> None:
    fake = tmp_path / runner.SDIST_NAME
    fake.write_bytes(b"not asyncpg")
    with pytest.raises(runner.RunnerError, match="SHA-256"):
        runner.fetch_sdist(tmp_path / "cache", fake)
    assert not (tmp_path / "cache" / runner.SDIST_NAME).exists()


def test_pg_major() -> None:
    assert runner.pg_major("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)") == "15"
    assert runner.pg_major("postgres (PostgreSQL) 17beta2") == "17"


class _Report:
    def __init__(self, when: str, outcome: str, longrepr: object = None) -> None:
        self.nodeid, self.when, self.outcome, self.longrepr = "t.py::a", when, outcome, longrepr
        self.passed, self.failed, self.skipped = (
            outcome == o for o in ("passed", "failed", "skipped")
        )
        self.duration = 0.5


class SubtestReport(_Report):
    """Named like pytest's subtest report class."""


def _fold(tmp_path: Path, *reports: _Report) -> list[str]:
    tsv = tmp_path / "r.tsv"
    tsv.unlink(missing_ok=True)
    writer = plugin.ResultWriter(str(tsv))
    for report in reports:
        writer.test_report(report)
    writer.finish("t.py::a")
    writer.close()
    return tsv.read_text().rstrip("\n").split("\t")


def test_result_writer_folds_phases(tmp_path: Path) -> None:
    ok = (_Report("setup", "passed"), _Report("call", "passed"), _Report("teardown", "passed"))
    assert _fold(tmp_path, *ok)[:3] == ["t.py::a", "passed", "1.500"]
    sub = SubtestReport("call", "failed", "AssertionError: 1 != 2")
    assert _fold(tmp_path, ok[0], sub, ok[1], ok[2])[1::2] == [
        "failed",
        "subtest failed: AssertionError: 1 != 2",
    ]
    assert _fold(tmp_path, _Report("setup", "failed", "E  boom"), ok[2])[1] == "error"
    assert _fold(tmp_path, ok[0], ok[1], _Report("teardown", "failed", "x"))[1] == "error"
    skip = _Report("setup", "skipped", ("f.py", 1, "Skipped: no k5test"))
    assert _fold(tmp_path, skip, ok[2])[1::2] == ["skipped", "Skipped: no k5test"]


def test_alias_finder(tmp_path: Path) -> None:
    pytest.importorskip("ferropg")
    harness = tmp_path / "harness" / "asyncpg" / "_testbase"
    harness.mkdir(parents=True)
    (harness / "__init__.py").write_text("from . import fuzzer\nMARK = 'sdist harness'\n")
    (harness / "fuzzer.py").write_text("")
    code = textwrap.dedent(
        """
        import alias_plugin, asyncpg, asyncpg.cluster, ferropg, ferropg.cluster
        from asyncpg import _testbase
        assert asyncpg is ferropg and asyncpg.cluster is ferropg.cluster
        assert _testbase.__name__ == "ferropg._testbase" and _testbase.MARK == "sdist harness"
        import asyncpg._testbase.fuzzer as fuzzer
        assert fuzzer is _testbase.fuzzer is sys.modules["ferropg._testbase.fuzzer"]
        try:
            import asyncpg.no_such_module
        except ModuleNotFoundError as e:
            assert "ferropg.no_such_module" in str(e), e
        else:
            raise AssertionError("imported a missing module")
        print("ok")
        """
    )
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        FERROPG_CONFORMANCE_TARGET="ferropg",
        FERROPG_CONFORMANCE_FALLBACK_DIR=str(tmp_path / "harness"),
    )
    out = subprocess.run(
        [sys.executable, "-c", "import sys\n" + code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr

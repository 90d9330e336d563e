"""Compare SQLAlchemy's own test runs: psycopg against ferropg, sync and async.

Why: our acceptance bar is "every test of SQLAlchemy's dialect suite that passes for psycopg
passes for ferropg".  scripts/sqlalchemy_suite.sh runs the suite four times (junit XML in
its out dir); this reads those files and lists, per pair (psycopg/ferropg and
psycopg_async/ferropg_async), the tests that passed for psycopg and not for ferropg, and
apart from them the tests whose outcome for ferropg SQLAlchemy decides by driver name.

    python tools/sqlalchemy_suite_compare.py OUT_DIR SDIST_DIR

Test ids: SQLAlchemy names each per-backend class after its config ("HStoreTest_postgresql+
psycopg_15_18"); that suffix is dropped so both drivers' runs name a test alike.

"By driver name" (such a test cannot pass without our dialect posing as another driver, so
it is listed for docs/ and does not fail the comparison):
  * a skip whose reason names a driver ("+psycopg", "postgresql+asyncpg": SQLAlchemy's
    exclusions print the rule that matched), or a whole class skipped for our config with
    no requirement given (a class-level __only_on__/__unsupported_on__);
  * an "Unexpected success" whose rule names drivers (fails_on_everything_except: the
    test is expected to fail on every driver not named);
  * a class that psycopg ran and ours did not collect, because its __only_on__ or
    __unsupported_on__ names drivers, or a requirement in its __requires__ does
    (test/requirements.py), read from the sdist's source;
  * a failure listed in EXPECTED_BY_DRIVER_NAME: the test's own code picks the result it
    expects by driver name, and the failure is the one that choice gives (checked by a
    pattern, so any other failure of the test still counts).
Everything else that passed for psycopg and not for ferropg (failed, error, skipped for any
other reason, not collected) fails the comparison.

Writes report.txt, not-passed-PAIR.tsv and driver-name-PAIR.tsv beside the XML files.
Exit status: 0 no test in the not-passed lists, 1 some, 2 no pair could be compared.
"""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

PAIRS = {"sync": ("psycopg", "ferropg"), "async": ("psycopg_async", "ferropg_async")}
RUNS = ("psycopg", "ferropg", "psycopg_async", "ferropg_async")
OUTCOMES = ("passed", "failed", "error", "skipped")

# "HStoreTest_postgresql+psycopg_15_18" -> "HStoreTest"; the same config name in messages.
CONFIG_SUFFIX = re.compile(r"_postgresql\+[A-Za-z0-9_]+")
# The class-level skip names our own config: "'postgresql(15.18.0)+ferropg'".
OWN_CONFIG = re.compile(r"'postgresql\([\d.]+\)\+\w+'")
CLASS_SKIP = re.compile(r"unsupported on any DB implementation\s*(.*)$", re.S)
DRIVER_WORD = re.compile(r"(?<![\w/])\w*\+\w+")
UNEXPECTED_SUCCESS = re.compile(r"Unexpected success for '\w+' \((.*)\)")
DRIVER_SPEC = re.compile(r"""["'](\w*\+\w+)["']""")

#: Tests whose own code picks the result it expects by driver name: a pattern of the
#: failure that choice gives a driver it does not name.  Keyed by class or class::test.
EXPECTED_BY_DRIVER_NAME = {
    # lib/sqlalchemy/testing/suite/test_results.py, ServerSideCursorsTest._is_server_side:
    # a cursor counts as server-side only for the drivers named there ("prevents these
    # tests from being usable by third party dialects", says its TODO), so each assertion
    # that one is fails.
    "test.dialect.test_suite.ServerSideCursorsTest": r"_is_server_side|^AssertionError: "
    r"False != True",
    # test/dialect/postgresql/test_types.py, test_default_native_inet_types:
    # against(["+psycopg", "+asyncpg"]) expect ipaddress objects, other drivers str;
    # ferropg returns ipaddress objects, as asyncpg does.
    "test.dialect.postgresql.test_types.InetRoundTripTests::test_default_native_inet_types": (
        r"^AssertionError: \[IPv[46]"
    ),
    # test_types.py, test_imv_returning_datatypes: against("+asyncpg") binds and expects an
    # asyncpg BitString, other drivers str; ferropg returns its BitString, as asyncpg does.
    "test.dialect.postgresql.test_types.PGInsertManyValuesTest::test_imv_returning_datatypes": (
        r"^AssertionError: .*BitString"
    ),
}


def load(path: Path) -> dict[str, tuple[str, str]]:
    """nodeid -> (outcome, message) of one junit file."""
    results: dict[str, tuple[str, str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        test = f"{CONFIG_SUFFIX.sub('', case.get('classname', ''))}::{case.get('name')}"
        outcome, message = "passed", ""
        for tag in ("skipped", "error", "failure"):  # the last found wins: worst first
            node = case.find(tag)
            if node is not None:
                outcome = "failed" if tag == "failure" else tag
                message = node.get("message") or (node.text or "").strip()
        if test in results and results[test][0] != "passed" and outcome == "passed":
            continue  # a duplicate id: keep the worse outcome
        results[test] = (outcome, " ".join(CONFIG_SUFFIX.sub("", message).split()))
    return results


def skip_reason(message: str) -> str:
    """A skip message without the "'<test id>' : " prefix SQLAlchemy puts before it."""
    return message.split("' : ", 1)[1] if "' : " in message else message


def skipped_by_driver_name(message: str) -> bool:
    reason = skip_reason(message)
    whole_class = CLASS_SKIP.search(reason)
    if whole_class:
        rest = OWN_CONFIG.sub("", whole_class.group(1)).strip(" ,")
        return not rest or bool(DRIVER_WORD.search(rest))
    return bool(DRIVER_WORD.search(reason))


# ------------------------------------------------------- classes not collected ----


@cache
def _module_tree(path: Path) -> ast.Module | None:
    return ast.parse(path.read_text()) if path.exists() else None


def _class_attributes(path: Path, name: str) -> dict[str, tuple]:
    """Literal class attributes (``__only_on__ = ...``) of class ``name`` in ``path``,
    with those it inherits from classes of the same module."""
    tree = _module_tree(path)
    for node in tree.body if tree else ():
        if isinstance(node, ast.ClassDef) and node.name == name:
            attrs: dict[str, tuple] = {}
            for base in reversed(node.bases):  # the first base wins, as in the MRO
                if isinstance(base, ast.Name):
                    attrs.update(_class_attributes(path, base.id))
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
                    try:
                        value = ast.literal_eval(stmt.value)
                    except ValueError:
                        continue
                    attrs[stmt.targets[0].id] = value if isinstance(value, tuple) else (value,)
            return attrs
    return {}


def _requirement_drivers(sdist: Path, name: str, depth: int = 1) -> list[str]:
    """The driver specs that requirement ``name`` of test/requirements.py names, with
    those of the requirements it uses (``self.other``) one level down."""
    tree = _module_tree(sdist / "test" / "requirements.py")
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.FunctionDef) and node.name == name:
            drivers = DRIVER_SPEC.findall(ast.unparse(node))
            for sub in ast.walk(node) if depth else ():
                if isinstance(sub, ast.Attribute) and getattr(sub.value, "id", "") == "self":
                    drivers += _requirement_drivers(sdist, sub.attr, depth - 1)
            return drivers
    return []


def class_rule(sdist: Path, test: str) -> str | None:
    """The class-level rule naming drivers that keeps ``test``'s class from our run."""
    module, _, name = test.split("::")[0].rpartition(".")
    attrs = _class_attributes(sdist / (module.replace(".", "/") + ".py"), name)
    for key in ("__only_on__", "__unsupported_on__"):
        if any("+" in str(spec) for spec in attrs.get(key, ())):
            return f"not collected: {key} = {attrs[key]!r}"
    for requirement in attrs.get("__requires__", ()):
        drivers = _requirement_drivers(sdist, requirement)
        if drivers:
            return f"not collected: __requires__ {requirement} ({', '.join(drivers)})"
    return None


# ------------------------------------------------------------------ comparison ----


def expected_by_driver_name(test: str, message: str) -> bool:
    cls, _, name = test.partition("::")
    for key in (cls, f"{cls}::{name.split('[')[0]}"):
        pattern = EXPECTED_BY_DRIVER_NAME.get(key)
        if pattern and re.search(pattern, message):
            return True
    return False


def driver_name_reason(sdist: Path, test: str, outcome: str, message: str) -> str | None:
    """Why SQLAlchemy gives ``test`` this outcome for ferropg by driver name, or None."""
    if outcome == "skipped" and skipped_by_driver_name(message):
        return skip_reason(message)
    unexpected = UNEXPECTED_SUCCESS.search(message)
    if outcome == "failed" and unexpected and DRIVER_WORD.search(unexpected.group(1)):
        return message
    if outcome == "missing":
        return class_rule(sdist, test)
    if outcome == "failed" and expected_by_driver_name(test, message):
        return f"the test expects another result from unnamed drivers: {message}"
    return None


def compare(sdist: Path, ref: dict, ours: dict) -> tuple[list, list]:
    """(not passed, by driver name): rows (test, ref outcome, our outcome, message)."""
    not_passed, by_driver = [], []
    for test in sorted(set(ref) | set(ours)):
        ref_outcome = ref.get(test, ("missing", ""))[0]
        outcome, message = ours.get(test, ("missing", "not collected"))
        reason = driver_name_reason(sdist, test, outcome, message)
        if reason is not None:
            by_driver.append((test, ref_outcome, outcome, reason))
        elif ref_outcome == "passed" and outcome != "passed":
            not_passed.append((test, ref_outcome, outcome, message))
    return not_passed, by_driver


def counts_table(out: Path, results: dict[str, dict]) -> list[str]:
    times = {}
    times_file = out / "times.tsv"
    if times_file.exists():
        for line in times_file.read_text().splitlines():
            name, seconds, *_ = line.split("\t")
            times[name] = seconds
    lines = [f"{'run':15} {'seconds':>8} {'tests':>6} " + " ".join(f"{o:>7}" for o in OUTCOMES)]
    for name, res in results.items():
        n = [sum(1 for o, _ in res.values() if o == outcome) for outcome in OUTCOMES]
        lines.append(
            f"{name:15} {times.get(name, '?'):>8} {len(res):>6} " + " ".join(f"{c:>7}" for c in n)
        )
    return lines


def write_tsv(path: Path, rows: list, last: str) -> None:
    header = f"test\tpsycopg\tferropg\t{last}\n"
    path.write_text(header + "".join("\t".join(row) + "\n" for row in rows))


def summary(rows: list) -> list[str]:
    """One line per class (with its count), then the reason of its first test."""
    lines, by_class = [], {}
    for test, ref, outcome, message in rows:
        by_class.setdefault((test.split("::")[0], outcome, ref), []).append(message)
    for (cls, outcome, ref), messages in sorted(by_class.items()):
        lines.append(f"  {len(messages):5} {outcome:8} (psycopg: {ref:7}) {cls}")
        lines.append(f"        {messages[0][:240]}")
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, sdist = Path(argv[0]), Path(argv[1])
    results = {n: load(out / f"{n}.xml") for n in RUNS if (out / f"{n}.xml").exists()}
    report = counts_table(out, results)
    failing = compared = 0
    for pair, (ref, ours) in PAIRS.items():
        if ref not in results or ours not in results:
            report.append(f"\n{pair}: not compared ({ref} or {ours} did not run)")
            continue
        compared += 1
        not_passed, by_driver = compare(sdist, results[ref], results[ours])
        failing += len(not_passed)
        write_tsv(out / f"not-passed-{pair}.tsv", not_passed, "ferropg message")
        write_tsv(out / f"driver-name-{pair}.tsv", by_driver, "rule")
        report.append(f"\n{pair}: {len(not_passed)} passed for {ref} and not for {ours}")
        report += [f"  {o:8} {t}\n           {m[:300]}" for t, _, o, m in not_passed]
        report.append(
            f"\n{pair}: {len(by_driver)} decided for {ours} by driver name, by class "
            f"(all in driver-name-{pair}.tsv)"
        )
        report += summary(by_driver)
    text = "\n".join(report) + "\n"
    (out / "report.txt").write_text(text)
    print(text, end="")
    if not compared:
        return 2
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

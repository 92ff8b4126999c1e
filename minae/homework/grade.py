"""Grade a student copy (or the reference project) for one assignment, locally.

The assignment's tests run in a separate Python process with the graded folder
first on ``PYTHONPATH``, so they import that folder's ``minae``, never the one the
grader itself came from. Each test file belongs to one task
(``test_task_1_3.py`` -> task 1.3); a task earns its points in proportion to the
tests it passes. A stub that still raises fails only its own task's tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .assignments import TASKS, assignment_of
from .build import MANIFEST, _task_of_test_file

__all__ = ["TaskResult", "GradeResult", "grade", "read_manifest"]


@dataclass
class TaskResult:
    id: str
    title: str
    points: int
    passed: int = 0
    total: int = 0
    failure: str | None = None  # "test_name: reason", the first failure

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.passed == self.total

    @property
    def earned(self) -> float:
        return round(self.points * self.passed / self.total, 1) if self.total else 0.0


@dataclass
class GradeResult:
    assignment: int
    title: str
    root: Path
    tasks: list
    minae_file: str | None = None
    warnings: list = field(default_factory=list)
    output: str = ""  # pytest's own output, for --verbose
    fresh_tests: bool = False

    @property
    def points(self) -> int:
        return sum(t.points for t in self.tasks)

    @property
    def earned(self) -> float:
        return round(sum(t.earned for t in self.tasks), 1)

    @property
    def ok(self) -> bool:
        return all(t.complete for t in self.tasks) and not self.warnings

    def task(self, task_id: str) -> TaskResult:
        return next(t for t in self.tasks if t.id == task_id)

    def table(self) -> str:
        width = max([len(t.title) for t in self.tasks] + [4])
        lines = [
            f"Assignment {self.assignment}: {self.title}",
            f"graded: {self.root}" + (" (with the grader's own tests)" if self.fresh_tests else ""),
            "",
            f"{'task':<6}{'what':<{width}}  {'tests':>7}  {'points':>9}",
        ]
        for t in self.tasks:
            tests = f"{t.passed}/{t.total}"
            lines.append(f"{t.id:<6}{t.title:<{width}}  {tests:>7}  {_num(t.earned) + '/' + str(t.points):>9}")
            if not t.complete:
                lines.append(f"{'':<6}✗ {t.failure or 'no tests found for this task'}")
        done = sum(t.complete for t in self.tasks)
        total = f"{_num(self.earned)}/{self.points}"
        lines.append(f"{'total':<6}{'':<{width}}  {'':>7}  {total:>9}   {done} of {len(self.tasks)} tasks done")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def read_manifest(root) -> dict | None:
    """The student copy's ``.minae-homework.json`` (which assignment it is), or None for the reference."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def grade(
    root=".",
    assignment=None,
    stream=None,
    timeout: float = 900,
    test_timeout: float = 60,
    verbose: bool = False,
    fresh_tests: bool = False,
) -> GradeResult:
    """Run the tests of ``assignment`` against the project folder ``root``; print and return the result.

    ``assignment`` defaults to the one the student copy was built for. ``stream``
    receives the table (standard output by default; pass False for silence).
    ``timeout`` bounds the whole run, ``test_timeout`` each test (an endless loop
    in a student's backward fails its test instead of hanging the grader).
    ``fresh_tests`` grades a temporary copy of ``root`` whose ``minae/homework``
    (the tests and their helpers) is the grader's own, so that edited tests
    count for nothing.
    """
    root = Path(root).resolve()
    if not (root / "minae").is_dir():
        raise FileNotFoundError(f"{root} has no minae package: give the folder of a student copy (or of the project)")
    if assignment is None:
        manifest = read_manifest(root)
        if manifest is None:
            raise ValueError(
                f"{root} is not a student copy (no {MANIFEST}): say which assignment to grade, e.g. --assignment 1"
            )
        assignment = manifest["assignment"]
    a = assignment_of(assignment)
    if not fresh_tests and not (root / a.tests_dir).is_dir():
        raise FileNotFoundError(f"{root / a.tests_dir} does not exist: is {root} a copy of assignment {a.number}?")
    results = {t.id: TaskResult(t.id, t.title, t.points) for t in a.tasks}
    result = GradeResult(a.number, a.title, root, list(results.values()), fresh_tests=fresh_tests)

    with tempfile.TemporaryDirectory(prefix="minae-grade-") as tmp:
        graded = _with_fresh_tests(root, Path(tmp) / "copy", a.number) if fresh_tests else root
        tests_dir = graded / a.tests_dir
        shutil.copyfile(Path(__file__).with_name("_pytest_plugin.py"), Path(tmp) / "minae_homework_grader.py")
        report_path = Path(tmp) / "report.json"
        env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
        path = [str(graded), tmp] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        env.update(
            PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",  # only pytest and the grader's plugin: the same run everywhere
            PYTHONPATH=os.pathsep.join(path),
            PYTHONDONTWRITEBYTECODE="1",  # leave no __pycache__ in the graded copy
            MINAE_HOMEWORK_REPORT=str(report_path),
            MINAE_HOMEWORK_ROOT=str(graded),
            MINAE_HOMEWORK_TEST_TIMEOUT=str(test_timeout),
            MPLBACKEND="Agg",
        )
        cmd = [
            sys.executable, "-m", "pytest", str(tests_dir), "-q", "--tb=short",
            "-p", "no:cacheprovider", "-p", "minae_homework_grader",
            "--rootdir", str(graded), "-o", "addopts=", "--continue-on-collection-errors",
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, cwd=graded, env=env, capture_output=True, text=True, timeout=timeout)
            result.output = proc.stdout + proc.stderr
            crashed = None
        except subprocess.TimeoutExpired as e:
            result.output = _text(e.stdout) + _text(e.stderr)
            crashed = f"the tests did not finish within {timeout:g} s"
        report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else None

    if report is None:
        last = [line for line in result.output.splitlines() if line.strip()]
        reason = crashed or ("the tests did not run: " + (last[-1].strip() if last else "pytest failed to start"))
        for t in results.values():
            t.failure = reason
    else:
        _tally(report, results)
        if crashed:
            for t in results.values():
                if not t.complete and t.failure is None:
                    t.failure = crashed
        result.minae_file = report.get("minae_file")
        if result.minae_file and not Path(result.minae_file).resolve().is_relative_to(graded.resolve()):
            result.warnings.append(f"the tests imported minae from {result.minae_file}, not from {root}")
        if fresh_tests and result.minae_file:  # name the student's file, not the temporary copy's
            result.minae_file = str(root / Path(result.minae_file).resolve().relative_to(graded.resolve()))

    out = sys.stdout if stream is None else stream
    if out:
        if verbose:
            print(result.output, file=out)
        print(result.table(), file=out)
    return result


_JUNK = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", "*.pyo", "*.egg-info", ".pytest_cache", "build", "dist")


def _with_fresh_tests(root: Path, copy: Path, number: int) -> Path:
    """A copy of ``root`` whose minae/homework is the grader's own (only assignment ``number``'s tests)."""
    shutil.copytree(root, copy, ignore=_JUNK)
    ours = Path(__file__).resolve().parent
    shutil.rmtree(copy / "minae" / "homework", ignore_errors=True)

    def skip(folder, names):
        other = {n for n in names if n.startswith("assignment") and n != f"assignment{number}"}
        return set(_JUNK(folder, names)) | (other if Path(folder).name == "tests" else set())

    shutil.copytree(ours, copy / "minae" / "homework", ignore=skip)
    return copy


def _text(data) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _tally(report: dict, results: dict) -> None:
    for error in report.get("collect_errors", []):
        task = _task_of_test_file(error["file"])
        if task in results and results[task].failure is None:
            results[task].failure = error["message"]
    for test in report.get("tests", []):
        task = _task_of_test_file(test["file"])
        if task not in results or test["outcome"] == "skipped":
            continue
        t = results[task]
        t.total += 1
        if test["outcome"] == "passed":
            t.passed += 1
        elif t.failure is None:
            t.failure = f"{test['name']}: {test['message']}"
    for t in results.values():
        if t.total == 0 and t.failure is None:
            t.failure = f"no tests ran for task {t.id} ({TASKS[t.id].test_file})"

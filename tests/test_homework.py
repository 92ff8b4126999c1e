"""The homework scaffolding: student copies built from the reference code, graded locally.

Every assignment is built once per session; the gradings (each a pytest run in a
separate process, as a student's would be) run two at a time in one fixture, and
the tests below read their results.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

try:
    import nbformat
except ImportError:  # in the `test` extra
    nbformat = None

from minae.backend import np
from minae.homework import ASSIGNMENTS, TASKS, build, check, grade, problems, put_back, scan
from minae.homework.assignments import HINTS, Assignment, Task, hint_for
from minae.homework.build import MANIFEST, _homework_md, readme_task_table, reference_root, student_notebook
from minae.homework.cli import main
from minae.homework.grade import judge_test
from minae.homework.gradebook import grade_all
from minae.homework.markers import MarkerError, find_blocks, find_stubs, has_marker, strip_blocks
from minae.homework.verify import put_back_problems

ROOT = reference_root()
ALL_TASKS = sorted(TASKS)


# ------------------------------------------------------------------ fixtures ---
@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """assignment -> the folder of its student copy, built once."""
    base = tmp_path_factory.mktemp("homework")
    out = {}
    for n in ASSIGNMENTS:
        build(n, base / f"assignment{n}")
        out[n] = base / f"assignment{n}"
    return out


def _import_copy(folder: Path) -> str:
    code = "import minae, minae.nn, minae.optim, minae.models, minae.homework; print(minae.__file__)"
    env = dict(os.environ, PYTHONPATH=str(folder), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _cli_grade(folder: Path, *args) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "minae.homework", "grade", str(folder), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def _copy_of(copies, n: int, folder: Path, *tasks) -> Path:
    shutil.copytree(copies[n], folder)
    for task in tasks:
        put_back(folder, task)
    return folder


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _planted(copies, work: Path) -> Path:
    """Assignment 1 with task 1.1 solved, but Exp.backward's sign flipped."""
    folder = _copy_of(copies, 1, work / "planted", "1.1")
    _edit(folder / "minae" / "ops.py", "return gy * y  # d e^x = e^x", "return -gy * y")
    return folder


def _transposed(copies, work: Path) -> Path:
    """Assignment 1 with task 1.3 solved, but a transpose missing in MatMul.backward."""
    folder = _copy_of(copies, 1, work / "transposed", "1.3")
    _edit(folder / "minae" / "ops.py", "gy2 @ _swap_last(b2)", "gy2 @ b2")
    return folder


def _broken(copies, work: Path) -> Path:
    """Assignment 4 with a syntax error in the library."""
    folder = _copy_of(copies, 4, work / "broken")
    vae = folder / "minae" / "models" / "vae.py"
    vae.write_text(vae.read_text(encoding="utf-8") + "\ndef oops(:\n", encoding="utf-8")
    return folder


# The attacks of issue 10, each on a copy whose honest score is known. Every one must score exactly
# what the same copy scores without it.
_PASS_EVERYTHING = """
import pytest

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome, report.longrepr = "passed", None
"""
_FAKE_REPORT = """
import json, os, sys
for key, path in list(os.environ.items()):
    if "REPORT" in key or "RESULT" in key:  # the old grader's report path: write a full score and leave
        with open(path, "w") as f:
            json.dump({"tests": [{"file": "test_task_1_1.py", "name": "t", "outcome": "passed"}]}, f)
        os._exit(0)
"""
_WRONG_GRADIENTS = """

def _doubled(cls):
    backward = cls.backward

    def wrong(self, *grads):
        out = backward(self, *grads)
        return tuple(None if g is None else 2 * g for g in out) if isinstance(out, tuple) else 2 * out

    cls.backward = wrong


for _cls in (Exp, Log, Mul, MatMul, Sum, Mean):
    _doubled(_cls)
"""
_PATCH_CHECKS = """
import sys as _sys

import minae.gradcheck as _gradcheck

_gradcheck.gradcheck = lambda *a, **k: True
for _name in list(_sys.modules):
    if _name.endswith("testing"):
        for _helper in ("gradcheck", "assert_close", "assert_equal", "assert_shape", "one_op_gradcheck"):
            setattr(_sys.modules[_name], _helper, lambda *a, **k: True)
"""
_RETRY_LOOP = """import time
while True:
    try:
        time.sleep(0.1)
    except BaseException:
        pass"""


FILE_ATTACKS = (  # a file planted in, or edited into, a copy that has task 1.1 written
    "conftest at the root",
    "conftest in minae",
    "a pytest package",
    "report and exit",
    "edited tests",
    "megabytes of output",
)


def _attacks(copies, work: Path) -> dict:
    """name -> (the honest copy, the same copy with the attack)."""
    out = {}
    honest = _copy_of(copies, 1, work / "honest", "1.1")
    for name in FILE_ATTACKS:
        folder = _copy_of(copies, 1, work / name.replace(" ", "-"), "1.1")
        if name == "conftest at the root":
            (folder / "conftest.py").write_text(_PASS_EVERYTHING)
        elif name == "conftest in minae":
            (folder / "minae" / "conftest.py").write_text(_PASS_EVERYTHING)
        elif name == "a pytest package":
            (folder / "pytest").mkdir()
            for file in ("__init__.py", "__main__.py"):
                (folder / "pytest" / file).write_text(_FAKE_REPORT)
            (folder / "sitecustomize.py").write_text(_FAKE_REPORT)
        elif name == "edited tests":
            (folder / "minae" / "homework" / "tests" / "assignment1" / "test_task_1_2.py").write_text(
                "def test_sum_to_values():\n    pass\n"
            )
        elif name == "megabytes of output":
            ops = folder / "minae" / "ops.py"
            ops.write_text(ops.read_text(encoding="utf-8") + '\nprint("x" * 20_000_000)\n', encoding="utf-8")
        else:
            init = folder / "minae" / "__init__.py"
            init.write_text(init.read_text(encoding="utf-8") + _FAKE_REPORT)
        out[name] = (honest, folder)
    wrong = _copy_of(copies, 1, work / "wrong", *[t.id for t in ASSIGNMENTS[1].tasks])
    (wrong / "minae" / "ops.py").write_text((wrong / "minae" / "ops.py").read_text() + _WRONG_GRADIENTS)
    patched = work / "wrong-patched"
    shutil.copytree(wrong, patched)
    (patched / "minae" / "ops.py").write_text((patched / "minae" / "ops.py").read_text() + _PATCH_CHECKS)
    out["gradcheck replaced from ops.py"] = (wrong, patched)
    looping = _copy_of(copies, 1, work / "looping", "1.1")
    ops = looping / "minae" / "ops.py"
    lines = ops.read_text(encoding="utf-8").splitlines(keepends=True)
    ((first, end, _),) = find_stubs(lines, "1.3")
    indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
    lines[first:end] = [indent + line + "\n" for line in _RETRY_LOOP.splitlines()]
    ops.write_text("".join(lines), encoding="utf-8")
    out["a retry loop that swallows the timeout"] = (honest, looping)
    return out


LIMITS = dict(test_timeout=2, timeout=6)  # per test, per task: small, so that the endless loop costs seconds


@pytest.fixture(scope="module")
def gradings(copies, tmp_path_factory):
    """Every grading the tests look at, run two at a time: key -> GradeResult (or CompletedProcess)."""
    work = tmp_path_factory.mktemp("gradings")
    jobs = {
        ("built", 1): lambda: grade(copies[1], 1, stream=False),
        ("reference", 1): lambda: grade(ROOT, 1, stream=False),
        ("planted",): lambda: _cli_grade(_planted(copies, work), "--assignment", "1"),
        ("transposed",): lambda: grade(_transposed(copies, work), 1, stream=False),
        ("broken",): lambda: grade(_broken(copies, work), 4, stream=False),
        ("cli reference",): lambda: _cli_grade(ROOT, "--assignment", "4"),
        ("local",): lambda: grade(_copy_of(copies, 1, work / "local", "1.2"), stream=False, reference=False),
    }
    attacks = _attacks(copies, work)
    for folder in {honest for honest, _ in attacks.values()}:  # each honest copy graded once
        jobs[("honest", folder)] = lambda f=folder: grade(f, 1, stream=False, seed=7, **LIMITS)
    for name, (_, attacked) in attacks.items():
        jobs[("attack", name)] = lambda f=attacked: grade(f, 1, stream=False, seed=7, **LIMITS)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {key: pool.submit(job) for key, job in jobs.items()}
        done = {key: f.result() for key, f in futures.items()}
    for name, (honest, _) in attacks.items():
        done[("honest", name)] = done[("honest", honest)]
    return done


# -------------------------------------------------------------------- marking ---
def test_the_marking_is_consistent():
    assert problems() == []
    blocks = scan()
    assert {b.task for b in blocks} == set(TASKS)
    for task in TASKS.values():
        assert (ROOT / task.test_file).is_file()


def test_markers_parse_and_strip():
    text = (
        "def f(x):\n"
        '    """doc"""\n'
        "    y = x + 1\n"
        "    # BEGIN SOLUTION task 1.1\n"
        "    # HINT: twice y\n"
        "    z = 2 * y\n"
        "    return z\n"
        "    # END SOLUTION\n"
        "\n"
        "def g(x):\n"
        "    # BEGIN SOLUTION task 2.1\n"
        "    return -x\n"
        "    # END SOLUTION\n"
    )
    (one, two) = find_blocks(text)
    assert (one.task, one.hint, one.body, one.line) == ("1.1", "twice y", ("    z = 2 * y", "    return z"), 4)
    assert (two.task, two.hint, two.body) == ("2.1", None, ("    return -x",))
    stubbed, _ = strip_blocks(text, lambda b: f"task {b.task}: {b.hint}" if b.task == "1.1" else None)
    assert stubbed == (
        'def f(x):\n    """doc"""\n    y = x + 1\n    raise NotImplementedError("task 1.1: twice y")\n'
        "\ndef g(x):\n    return -x\n"
    )
    compile(stubbed, "<stubbed>", "exec")
    for bad in (
        "# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n",  # no task
        "# BEGIN SOLUTION task 1.1\nx = 1\n",  # never closed
        "x = 1\n# END SOLUTION\n",  # no BEGIN
        "# BEGIN SOLUTION task 1.1\n# BEGIN SOLUTION task 1.2\n# END SOLUTION\n",  # nested
        "# BEGIN SOLUTION task 1.1\nx = 1\n# HINT: late\n# END SOLUTION\n",  # hint not first
    ):
        with pytest.raises(MarkerError):
            find_blocks(bad, "bad.py")


def test_every_block_holds_code():
    # marked code is ordinary code: the markers are comments, so the library's own tests cover it;
    # here only that every block holds code (an empty block would stub out nothing)
    for b in scan():
        assert any(line.strip() and not line.strip().startswith("#") for line in b.body), (b.path, b.line)


# --------------------------------------------------------------- built copies ---
@pytest.mark.parametrize("n", sorted(ASSIGNMENTS))
def test_built_copy_has_what_a_student_needs(copies, n):
    folder = copies[n]
    for name in ("setup.cfg", "pyproject.toml", "README.md", "HOMEWORK.md", MANIFEST):
        assert (folder / name).is_file(), name
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["assignment"] == n
    assert manifest["warnings"] == []  # e.g. a notebook repeating a solution line: tag its cell as an exercise
    assert [t["id"] for t in manifest["tasks"]] == [t.id for t in ASSIGNMENTS[n].tasks]
    assert all(t["where"] for t in manifest["tasks"])
    tests = folder / "minae" / "homework" / "tests"
    assert sorted(p.name for p in tests.iterdir()) == [f"assignment{n}"]
    assert not (folder / "tests").exists() and not (folder / ".git").exists() and not (folder / "bench").exists()
    assert not [p for p in folder.rglob("*") if p.name == "__pycache__" or p.suffix in (".pyc", ".pyo")]
    for name in manifest["notebooks"]:
        nb = json.loads((folder / name).read_text(encoding="utf-8"))
        if nbformat is not None:
            nbformat.validate(nbformat.from_dict(nb))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
        assert f"assignment={n}" in "".join(code[-1]["source"])  # the grader cell


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is in the `test` extra")
@pytest.mark.parametrize("n", sorted(ASSIGNMENTS))
def test_built_copy_is_lint_clean_and_formatted(copies, n):
    # the stubs are written as ruff format writes them; the copy's ruff.toml keeps `ruff check --fix`
    # from deleting an import that a stubbed function needs
    for cmd in (["ruff", "check", "--no-cache", "."], ["ruff", "format", "--check", "--no-cache", "minae"]):
        proc = subprocess.run(cmd, cwd=copies[n], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("n", sorted(ASSIGNMENTS))
def test_built_copy_imports_its_own_minae(copies, n):
    assert Path(_import_copy(copies[n])).resolve().is_relative_to(copies[n].resolve())


@pytest.mark.parametrize("n", sorted(ASSIGNMENTS))
def test_no_solution_text_in_built_copy(copies, n):
    """Every line of every cut-out block that is not also written elsewhere in the library is absent."""
    cut = [b for b in scan() if TASKS[b.task].assignment >= n]
    kept_text = set()
    for path in {b.path for b in scan()}:
        lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
        inside = {i for b in cut if b.path == path for i in range(b.begin, b.end + 1)}
        kept_text.update(line.strip() for i, line in enumerate(lines) if i not in inside)
    for path in ROOT.joinpath("minae").rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[:2] != ("minae", "homework") and rel.as_posix() not in {b.path for b in cut}:
            kept_text.update(line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    secret = {line.strip() for b in cut for line in b.body if len(line.strip()) >= 8} - kept_text
    assert secret
    files = [p for p in copies[n].rglob("*") if p.is_file() and p.suffix != ".npz"]
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".ipynb":  # the sources as written in the notebook, not JSON-escaped
            nb = json.loads(text)
            text = "\n".join("".join(c["source"]) for c in nb["cells"])
        found = [line for line in secret if line in text]
        assert not found, f"{path.relative_to(copies[n])} holds solution text: {found[:3]}"
        if path.suffix in (".py", ".ipynb"):
            assert not [line for line in text.splitlines() if has_marker(line)], path


def test_built_copy_scores_zero(copies, gradings):
    result = gradings[("built", 1)]
    assert Path(result.minae_file).resolve().is_relative_to(copies[1].resolve())
    assert result.reference and not result.ok and result.earned == 0
    for t in result.tasks:
        assert t.total > 0 and t.passed == 0, (t.id, t.passed, t.total)
        assert f"not written yet (task {t.id}:" in t.failure, t.failure
    assert f"seed {result.seed}" in result.table()


def test_reference_scores_full_marks(gradings):
    result = gradings[("reference", 1)]
    assert result.ok, result.table()
    assert result.earned == result.points == ASSIGNMENTS[1].points
    assert Path(result.minae_file).resolve().is_relative_to(ROOT)


@pytest.mark.slow
@pytest.mark.parametrize("n", sorted(ASSIGNMENTS))
def test_put_back_pass_each_solution_alone_earns_exactly_its_task(n):
    # what `minae-homework check` runs: the built copy passes no test, each solution alone completes its task
    assert put_back_problems(n, seed=3) == []


def test_planted_sign_error_is_caught_and_named(gradings):
    proc = gradings[("planted",)]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = proc.stdout.splitlines()
    row = next(i for i, line in enumerate(rows) if line.startswith("1.1 "))
    assert "/9" in rows[row] and "20/20" not in rows[row]
    reason = rows[row + 1]
    assert "✗ test_exp_backward: the chain rule" in reason and "gradcheck failed for exp(x)" in reason
    assert "backward gives" in reason and "finite differences give" in reason


def test_a_failure_is_located_in_the_tasks_own_code(gradings):
    # the mismatch raises inside MatMul.forward (given code), called from the student's MatMul.backward
    failure = gradings[("transposed",)].task("1.3").failure
    assert "raised ValueError at minae/ops.py:" in failure and "in MatMul.backward:" in failure, failure
    assert failure.startswith("test_matmul_backward_matrices: MatMul's backward: write one entry y_ij"), failure


def test_without_a_reference_the_copys_own_checks_judge(gradings):
    # a student's own install has no reference: the tests' own values and finite differences judge (feedback)
    result = gradings[("local",)]
    assert not result.reference and "the copy's own checks" in result.table()
    assert [t.passed == t.total for t in result.tasks] == [False, True, False, False, False]


def test_cli_grade_exit_status_zero_when_everything_passes(gradings):
    proc = gradings[("cli reference",)]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "100/100" in proc.stdout


def test_a_copy_that_does_not_import_scores_zero_with_the_reason(gradings):
    result = gradings[("broken",)]
    for t in result.tasks:
        assert t.passed == 0
        assert "could not be imported: SyntaxError" in t.failure and "vae.py" in t.failure, t.failure


ATTACKS = [*FILE_ATTACKS, "gradcheck replaced from ops.py", "a retry loop that swallows the timeout"]


@pytest.mark.parametrize("attack", ATTACKS)
def test_an_attack_scores_what_the_honest_copy_scores(gradings, attack):
    honest, attacked = gradings[("honest", attack)], gradings[("attack", attack)]
    assert [t.passed for t in attacked.tasks] == [t.passed for t in honest.tasks], attacked.table()
    assert attacked.earned == honest.earned < attacked.points


def test_megabytes_of_output_are_truncated(gradings):
    output = gradings[("attack", "megabytes of output")].output
    assert len(output) < 200_000 and "more bytes of output dropped" in output


def test_points_that_do_not_add_up_to_100_are_stated():
    a = Assignment(9, "A short one", (Task("1.1", "Exp, Log and Mul backward", 30),))
    manifest = {"tasks": [{"id": "1.1", "title": "t", "points": 30, "where": []}], "later_tasks_stubbed": []}
    text = _homework_md(a, dict(manifest, notebooks=[]))
    assert "Total: 30 points. (The points add up to 30, not 100: your grade is out of 30.)" in text
    assert "$" not in text and "xercise" not in text


def test_an_endless_loop_costs_its_own_task_only(gradings):
    result = gradings[("attack", "a retry loop that swallows the timeout")]
    assert result.task("1.1").complete
    assert "ran longer than 2 s (stopped)" in result.task("1.3").failure


def test_the_verdict_is_computed_from_data_against_the_reference():
    # a student's run hands back values; the reference's finite differences judge its backward
    ref = {"checks": [{"kind": "gradcheck", "name": "f", "inputs": [0], "numeric": [np.ones(3)], "atol": 1e-5,
                       "rtol": 1e-3, "analytic": [np.ones(3)]}], "error": None, "ended": True}  # fmt: skip
    good = {"checks": [dict(ref["checks"][0], numeric=None)], "error": None, "ended": True}
    bad = {"checks": [dict(ref["checks"][0], analytic=[-np.ones(3)], numeric=[-np.ones(3)])], "error": None,
           "ended": True}  # fmt: skip
    assert judge_test(ref, good, []) is None
    assert "backward gives -1, finite differences give 1" in judge_test(ref, bad, [])
    assert (
        judge_test(ref, {"checks": [], "error": None, "ended": True}, []) == "the test stopped before its check 1 of 1"
    )


def test_in_process_check_is_quick_feedback(copies, capsys):
    assert check("1.1") is True
    assert "not the grade" in capsys.readouterr().out
    code = "import minae.homework as h; ok = h.check('1.3'); print('ok' if ok else 'not ok')"
    env = dict(os.environ, PYTHONPATH=str(copies[1]), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-c", code], cwd=copies[1], env=env, capture_output=True, text=True)
    assert proc.stdout.strip().endswith("not ok") and "not written yet (task 1.3" in proc.stdout, proc.stdout


# ------------------------------------------------------------------ Gradescope ---
def _python3_on_path(tmp_path: Path) -> dict:
    """The environment in which run_autograder's `python3` is this Python (with this minae)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "python3").symlink_to(sys.executable)
    return dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    out = tmp_path_factory.mktemp("autograder") / "autograder.zip"
    assert main(["autograder", "1", "--out", str(out)]) == 0
    return out


def _gradescope(zip_path: Path, tmp_path: Path, submit) -> dict:
    root = tmp_path / "autograder"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    submission = root / "submission"
    submission.mkdir(parents=True)
    submit(submission)
    script = root / "source" / "run_autograder"
    script.chmod(0o755)
    env = dict(_python3_on_path(tmp_path), AUTOGRADER_ROOT=str(root))
    proc = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=600)
    results = root / "results" / "results.json"
    assert results.is_file(), proc.stdout + proc.stderr
    data = json.loads(results.read_text(encoding="utf-8"))
    assert [t["number"] for t in data["tests"]] == [t.id for t in ASSIGNMENTS[1].tasks]
    assert sum(t["max_score"] for t in data["tests"]) == ASSIGNMENTS[1].points
    assert data["score"] == sum(t["score"] for t in data["tests"])
    assert all(isinstance(t["output"], str) and t["name"] for t in data["tests"])
    return data


def test_autograder_zip_has_gradescopes_layout(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as zf:
        names = set(zf.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
    assert {"setup.sh", "run_autograder", "minae-reference/setup.cfg", "student-copy/.minae-homework.json"} <= names
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    assert "minae-reference/minae/homework/tests/assignment1/test_task_1_1.py" in names


def test_autograder_grades_the_built_copy_zero(autograder_zip, copies, tmp_path):
    data = _gradescope(autograder_zip, tmp_path, lambda s: shutil.copytree(copies[1], s, dirs_exist_ok=True))
    assert data["score"] == 0 and "not written yet" in data["tests"][0]["output"]


@pytest.mark.slow
def test_autograder_grades_the_reference_full_marks(autograder_zip, tmp_path):
    def submit(s):
        shutil.copytree(ROOT / "minae", s / "minae", ignore=shutil.ignore_patterns("__pycache__"))

    assert _gradescope(autograder_zip, tmp_path, submit)["score"] == 100


def test_autograder_grades_only_the_stub_files(autograder_zip, copies, tmp_path):
    folder = _copy_of(copies, 1, tmp_path / "solved", "1.3")
    data = _gradescope(autograder_zip, tmp_path, lambda s: shutil.copyfile(folder / "minae" / "ops.py", s / "ops.py"))
    assert [t["score"] for t in data["tests"]] == [0, 0, 20, 0, 0]


@pytest.mark.parametrize("broken", ["nothing", "exits at import"])
def test_autograder_writes_results_for_a_broken_submission(autograder_zip, copies, tmp_path, broken):
    def submit(s):
        if broken == "exits at import":
            shutil.copytree(copies[1], s, dirs_exist_ok=True)
            init = s / "minae" / "__init__.py"
            init.write_text(init.read_text(encoding="utf-8") + "\nimport os\nos._exit(3)\n")

    data = _gradescope(autograder_zip, tmp_path, submit)
    assert data["score"] == 0
    expected = "no Python files" if broken == "nothing" else "exited with status 3 while importing minae"
    assert all(expected in t["output"] for t in data["tests"]), data


# ------------------------------------------------------------------- gradebook ---
def test_grade_all_writes_one_row_per_submission(copies, tmp_path, capsys):
    solved = _copy_of(copies, 1, tmp_path / "alice", "1.1", "1.2")
    empty = tmp_path / "bob"
    empty.mkdir()
    zipped = tmp_path / "carol.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for path in copies[1].rglob("*"):
            if path.is_file():
                zf.write(path, f"carol/{path.relative_to(copies[1]).as_posix()}")
    csv_path = tmp_path / "grades.csv"
    rows = grade_all([solved, empty, zipped], 1, csv_path, jobs=2, seed=5)
    assert [r["total"] for r in rows] == [40, 0, 0]
    assert "no copy of minae" in rows[1]["reason"] and rows[0]["reason"] == rows[2]["reason"] == ""
    with open(csv_path, newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert [row["1.1"] for row in table] == ["20", "0", "0"] and table[0]["submission"] == str(solved)
    out = capsys.readouterr().out
    assert f"1.1 {TASKS['1.1'].title}: 1/3 complete" in out
    assert "most common first failure" in out and "not written yet (task 1.3" in out


# ------------------------------------------------------------- a student's install ---
@pytest.mark.slow
def test_a_fresh_venv_with_the_copys_own_install_grades(copies, tmp_path):
    # as a student meets it: a new virtual environment, `pip install -e .` in the copy, then grade
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    folder = _copy_of(copies, 1, tmp_path / "student")
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", "."], cwd=folder, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the student's own install, nothing else
    proc = subprocess.run(
        [str(venv / "bin" / "minae-homework"), "grade", "."],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 1 and "0/100" in proc.stdout, proc.stdout + proc.stderr
    assert proc.stdout.count("not written yet (task 1.") == 5, proc.stdout
    assert "the copy's own checks" in proc.stdout  # a student's install has no reference: feedback, not a grade


# ------------------------------------------------------------- build options ---
def test_build_refuses_a_folder_in_use(copies, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        build(1, tmp_path)
    with pytest.raises(FileExistsError):
        build(1, tmp_path, force=True)  # --force replaces only an earlier student copy
    with pytest.raises(ValueError):
        build(1, ROOT / "minae" / "hw")


def test_build_force_and_keep_later(tmp_path):
    folder = tmp_path / "copy"
    build(2, folder)
    adam = (folder / "minae" / "optim" / "adam.py").read_text(encoding="utf-8")
    vae = (folder / "minae" / "models" / "vae.py").read_text(encoding="utf-8")
    # two stubs: the moments, then the step (AMSGrad's line between them is given)
    assert [task for _, _, task in find_stubs(adam.splitlines())] == ["2.6", "2.6"]
    assert 'raise NotImplementedError("task 4.1: part of assignment 4' in vae
    build(2, folder, keep_later=True, force=True)
    vae = (folder / "minae" / "models" / "vae.py").read_text(encoding="utf-8")
    assert "NotImplementedError" not in vae and "BEGIN SOLUTION" not in vae
    assert json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["later_assignments"] == "solved"


def test_student_notebook_clears_outputs_and_empties_exercises():
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "text"},
            {
                "cell_type": "code",
                "metadata": {"tags": ["solution", "task 4.1"]},
                "execution_count": 3,
                "outputs": [{"output_type": "stream", "name": "stdout", "text": "z = mu + std * eps"}],
                "source": ["# HINT: draw eps\n", "z = mu + std * eps\n"],
            },
            {"cell_type": "code", "metadata": {}, "execution_count": 4, "outputs": [{"x": 1}], "source": "print(1)"},
        ],
    }
    out = student_notebook(nb, 4)
    check_cell, exercise, plain = out["cells"][0], out["cells"][2], out["cells"][3]
    assert "minae.__file__" in check_cell["source"] and "not from the copy" in check_cell["source"]
    assert "mu + std" not in exercise["source"]
    assert "not written yet: task 4.1: draw eps" in exercise["source"] and "raise" not in exercise["source"]
    assert "not graded" in exercise["source"]
    assert exercise["metadata"]["tags"] == ["task 4.1", "exercise"]
    assert exercise["outputs"] == [] and plain["outputs"] == [] and plain["execution_count"] is None
    assert 'grade("..", assignment=4)' in out["cells"][-1]["source"]
    assert "not graded themselves" in out["cells"][-2]["source"]
    assert out["cells"][-1]["id"] and nb["cells"][1]["outputs"]  # the original is left alone
    nbformat.validate(out)
    kept = student_notebook(nb, 3, keep_later=True)  # a later assignment's cell stays as it is
    assert kept["cells"][2]["source"] == "".join(nb["cells"][1]["source"])


# ----------------------------------------------- the CUDA paths (issue 13) ---
def test_testing_helpers_read_values_from_any_device(device):
    import minae
    from minae import backend
    from minae.homework.testing import as_numpy, assert_close

    t = minae.tensor([1.0, 2.0, 3.0], device=device)
    assert as_numpy(t).tolist() == as_numpy(t.data).tolist() == [1.0, 2.0, 3.0]
    assert as_numpy(t.data).dtype == "float64" and as_numpy(2.5).tolist() == 2.5
    assert_close(t, [1.0, 2.0, 3.0], "t")
    with backend.on(t.device):  # raw arrays: CuPy computes on the current GPU
        twice = t.data * 2
    assert_close(t * 2, twice, "2t")
    with pytest.raises(AssertionError, match=r"t: expected 4 at index \(2,\), got 3"):
        assert_close(t, [1.0, 2.0, 4.0], "t")


def test_testing_helpers_take_gpu_arrays_without_implicit_conversion(monkeypatch):
    import fake_cupy

    from minae import backend
    from minae.homework.testing import as_numpy

    monkeypatch.setattr(backend, "_cupy", fake_cupy)
    assert as_numpy(fake_cupy.asarray([1.5, 2.5])).tolist() == [1.5, 2.5]
    assert as_numpy([fake_cupy.asarray(1.0), fake_cupy.asarray(2.0)]).tolist() == [1.0, 2.0]


def test_a_block_holding_the_def_line_is_refused():
    for text, says in (
        ("def f(x):\n    # BEGIN SOLUTION task 1.1\n    def g():\n        return x\n    # END SOLUTION\n", "def g():"),
        ("class A:\n    # BEGIN SOLUTION task 1.1\n    def f(self):\n        pass\n    # END SOLUTION\n", "def f"),
        ("# BEGIN SOLUTION task 1.1\ndef f(x):\n    return x\n# END SOLUTION\n", "module level"),
    ):
        with pytest.raises(MarkerError, match="module level|must stay outside the block") as e:
            find_blocks(text, "bad.py")
        assert says in str(e.value)
    # a def nested deeper inside the block (a helper of the solution) is fine
    (block,) = find_blocks("def f(x):\n    # BEGIN SOLUTION task 1.1\n    y = x\n    # END SOLUTION\n")
    assert block.name == "f"


def test_hints_live_with_the_task_definitions():
    for b in scan():
        assert hint_for(b.task, b.name, b.occurrence), f"no hint in HINTS for task {b.task} in {b.name}"
    assert set(HINTS) <= set(TASKS)
    for path in (ROOT / "minae" / "models").glob("*.py"):
        assert "# HINT:" not in path.read_text(encoding="utf-8"), path


def test_stubs_carry_the_hints(copies):
    text = (copies[4] / "minae" / "models" / "vae.py").read_text(encoding="utf-8")
    assert hint_for("4.1", "VAE.reparameterise")[:40] in text


def test_homework_md_describes_exercise_cells_only_where_there_are_some(copies):
    one, two = ((copies[n] / "HOMEWORK.md").read_text(encoding="utf-8") for n in (1, 2))
    assert "Exercise cells: `notebooks/00-autodiff-from-scratch.ipynb` (task 1.5)" in one
    assert "xercise" not in two and "## Notebooks" not in two
    assert "Total: 100 points." in one
    for n, text in ((1, one), (2, two)):  # the derivation questions and the time estimates
        assert "## Derive, then write" in text and "in all, for a student who followed the lecture" in text
        assert all(q in text for q in ASSIGNMENTS[n].questions)
        assert f"| {ASSIGNMENTS[n].tasks[0].id} | {ASSIGNMENTS[n].tasks[0].title} | " in text


def test_readme_task_table_follows_the_task_list(copies):
    assert readme_task_table() in (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_task_table() in (copies[1] / "README.md").read_text(encoding="utf-8")
    assert "| 1 · The autodiff core (100 points, about " in readme_task_table()
    for t in ASSIGNMENTS[1].tasks + ASSIGNMENTS[2].tasks:  # every task of A1 and A2 has its time estimate
        assert t.minutes > 0 and f"{t.id} {t.title} ({t.points}, " in readme_task_table()


def test_student_notebook_of_assignment_1_says_the_exercise_is_yours(copies):
    nb = nbformat.read(copies[1] / "notebooks" / "00-autodiff-from-scratch.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "exercise" in c.metadata.get("tags", []))
    assert "Your exercise: write that loop" in nb.cells[at - 1].source
    assert "written out" not in nb.cells[at - 1].source
    assert "check-copy" in nb.cells[0].metadata["tags"]


def test_a_task_s_hint_is_printed_once_and_later_cells_say_briefly_which_task_they_need(monkeypatch, capsys):
    # one unwritten task used by twenty cells: its hint once, then a short line per cell naming the task
    from minae.homework import notebook

    monkeypatch.setattr(notebook, "_unwritten", [])
    hint = "task 1.5: " + "walk the graph in generation order, " * 8
    notebook.report_unwritten(NotImplementedError(hint))
    first = capsys.readouterr().out
    assert "which is not written yet" in first and hint in first
    for _ in range(19):
        notebook.report_unwritten(NotImplementedError(hint))
    notebook.report_unwritten(ValueError("operands could not be broadcast together " * 10))  # a result never made
    later = capsys.readouterr().out.splitlines()
    assert len(later) == 20 and all("task 1.5" in line and len(line) < 100 for line in later), later
    assert not any("generation order" in line or "broadcast" in line for line in later), later
    notebook.report_unwritten(NotImplementedError("task 1.6: another hint"))  # a second task: its own hint, once
    assert "another hint" in capsys.readouterr().out
    with pytest.raises(KeyError):  # before any stub, an error is an error
        monkeypatch.setattr(notebook, "_unwritten", [])
        notebook.report_unwritten(KeyError("x"))


def test_check_names_the_tree_and_states_points(capsys):
    assert main(["check", "--markers-only"]) == 0
    out = capsys.readouterr().out
    assert f"checking the reference tree {ROOT}" in out and "markers ok" in out


@pytest.mark.slow
@pytest.mark.skipif(nbformat is None, reason="nbclient and nbformat are in the `test` extra")
def test_run_all_of_a_student_notebook_reaches_the_grader(copies, tmp_path, monkeypatch):
    # assignment 1's copy as handed out: the exercise cell is empty and run_backward is a stub, yet Run All
    # goes through to the grader cell, whose table names the unwritten tasks
    nbclient = pytest.importorskip("nbclient")
    folder = _copy_of(copies, 1, tmp_path / "student")
    monkeypatch.setenv("PYTHONPATH", str(folder))
    monkeypatch.setenv("MINAE_FAST", "1")
    path = folder / "notebooks" / "00-autodiff-from-scratch.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(path.parent)}}).execute()
    text = lambda cell: "".join(o.get("text", "") for o in cell.get("outputs", []))  # noqa: E731
    assert str(folder) in text(nb.cells[0])
    exercise = next(c for c in nb.cells if "exercise" in c.metadata.get("tags", []))
    assert "not written yet: task 1.5" in text(exercise)
    hinted = [ln.split(",")[0] for c in nb.cells for ln in text(c).splitlines() if "which is not written yet" in ln]
    assert hinted and len(hinted) == len(set(hinted)), hinted  # each task's hint once, then a short line per cell
    assert all(len(line) < 100 for c in nb.cells for line in text(c).splitlines() if "(not written yet;" in line)
    assert "0/100" in text(nb.cells[-1])


# ------------------------------------------------- notebook cells that hold answers ---
def _code_cells(path):
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    return [(k, "".join(c["source"])) for k, c in enumerate(cells) if c["cell_type"] == "code"]


@pytest.mark.parametrize("n", sorted(ASSIGNMENTS))
def test_no_shipped_notebook_cell_computes_a_cut_tasks_answer(copies, n):
    """Every code cell of every copy's notebooks, against the grader's answer forms of the tasks the copy cuts."""
    from minae.homework.answers import answers_in
    from minae.homework.build import _cutter, answer_cells

    cut = _cutter(n, keep_later=False)
    assert answer_cells(copies[n], cut) == []
    tasks = [t for t in TASKS if cut(t)]
    for path in sorted((copies[n] / "notebooks").glob("*.ipynb")):
        for k, source in _code_cells(path):
            assert answers_in(source, tasks) == [], (path.name, k, source[:200])


@pytest.mark.parametrize("n", sorted(ASSIGNMENTS))
def test_no_shipped_file_states_a_cut_tasks_answer(copies, n):
    """Every copy's test files (code, comments, docstrings), hints, HOMEWORK.md, stubs' docstrings and notebook
    cells, against the grader's answer forms of the tasks it cuts; the build warns of none."""
    from minae.homework.build import _cutter, shipped_answers
    from minae.homework.grade import read_manifest

    assert shipped_answers(copies[n], _cutter(n, keep_later=False)) == []
    assert not [w for w in read_manifest(copies[n])["warnings"] if "answer" in w]


def test_a_shipped_file_that_states_an_answer_is_found(copies, tmp_path):
    """The check can fail: F_β's limits written into a shipped test (the way test_task_3_1.py once had them),
    into a comment, a hint or a stub's docstring of the assignment-3 copy are each found."""
    from minae.homework.answers import answers_in
    from minae.homework.build import _cutter, shipped_answers

    cut = _cutter(3, keep_later=False)
    for form in ("e.min(axis=-1)", "e.mean(axis=-1)", "np.min(e, axis=1)", "np.mean(energies, -1)", "E.min(dim)"):
        assert [t for t, _ in answers_in(f"expected = {form}", ["3.1"])] == ["3.1"], form
    for form in ("x.mean(0)", "loss.mean()", "reference(e, 2.0, axis=0).mean()", "g.sum(axis=-1)"):
        assert answers_in(f"expected = {form}", ["3.1"]) == [], form
    plants = [
        ("minae/homework/tests/assignment3/test_task_3_1.py", "\nEXPECTED = lambda e: e.min(axis=-1)\n"),
        ("minae/homework/tests/assignment3/test_task_3_2.py", "\n# F_0 is e.mean(axis=-1)\n"),
        ("minae/homework/assignments.py", "\n# hint: np.mean(energies, -1) at β = 0\n"),
    ]
    for k, (rel, line) in enumerate(plants):
        folder = tmp_path / f"c{k}"
        shutil.copytree(copies[3], folder)
        with open(folder / rel, "a", encoding="utf-8") as f:
            f.write(line)
        assert [(f, t) for f, t, _ in shipped_answers(folder, cut)] == [(rel, "3.1")], rel
    folder = tmp_path / "doc"
    shutil.copytree(copies[3], folder)
    _edit(folder / "minae" / "nn" / "functional.py", "limit, the mean energy.", "limit, energies.mean(dim=dim).")
    assert [(f, t) for f, t, _ in shipped_answers(folder, cut)] == [("minae/nn/functional.py", "3.1")]


# The places a student-reviewer found answers in copies the first scan did not read (issue 22), each as written there
_REVIEWED_HITS = [
    ("1.3", "grad_reads = ((1,), (0,))  # ∂L/∂a = ∂L/∂y bᵀ, ∂L/∂b = aᵀ ∂L/∂y"),
    ("1.3", "ga = reshape(sum_to(gy2 @ _swap_last(b2), a2.shape), a.shape)"),
    ("1.3", "gb = np.matmul(a.transpose(-1, -2), gy)"),
    ("1.1", "grad_reads = ((1,), (0,))  # ∂(ab)/∂a = b, ∂(ab)/∂b = a"),
    ("1.1", "``# HINT: d log x/dx = 1/x``"),
    ("2.3", "D_KL = ½ Σ_i (v_i − log v_i − 1 + μ_i²)"),
    ("2.3", "kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(-1)"),
    ("4.5", r"D_\text{KL} = \frac 1 2 \sum_{i=1}^{d} \big( v_i - \log v_i - 1 + \mu_i^2 \big)."),
    ("4.1", "vae = VAE(latent_dim=20, beta=1.0)  # z = μ + √v ⊙ ε;  F̃ = C + β·KL(N(μ, v) ‖ N(0, I))"),
    ("4.1", r"\boldsymbol z = \boldsymbol\mu + \sqrt{\boldsymbol v} \odot \boldsymbol\epsilon"),
    ("4.1", '"z": (6.4, 0.0, "sampler\\nz = μ + √v ⊙ ε", "#e4d7f0"),'),
    ("4.1", "z = mu + torch.exp(0.5 * logvar) * eps"),
    ("3.5", 'closed = F.contractive_penalty(cae.encode(y), cae.encoder[0].weight, "sigmoid", reduction="none")'),
    ("3.5", 'jac = F.contractive_penalty(h, m.encoder[0].weight, "sigmoid", reduction="none").sqrt()'),
    ("3.5", "slope = (lambda h: h * (1 - h))(cae.encode(y[:1])).numpy()[0]\nclosed_rows = slope[:, None] * W"),
    ("4.4", "F̃_K(y) = (1/K) Σ_k C(y, Dec(z_k)) + β·KL,   z_k = reparameterise(μ, log v), k = 1 … K"),
    ("4.3", "Decode z = (1 − t) μ(y_a) + t μ(y_b) for t = 0 … 1: (steps, in_features)."),
    ("4.3", "assert_close(z, (1 - t) * mu_a + t * mu_b, 'the decoded codes', rtol=1e-4)"),
    ("4.3", r"$\boldsymbol z(t) = (1 - t)\,\boldsymbol\mu_a + t\,\boldsymbol\mu_b$"),
    ("4.3", "z = mu_a + t * (mu_b - mu_a)"),
]
_INNOCENT = [  # the same symbols, no task's answer
    "y = x @ W.T + b",
    "gx = gy @ W; gW = gy.T @ x",
    "c = a.T @ b",
    "x - np.log(x) + 1",
    "the variance v, and log v from the encoder",
    "z = mu + v * eps  # the slip: the variance, not its square root",
    "μ + σ² ε",
    "If ε ~ N(0, 1), what are the mean and the variance of μ + s ε?",
    "path = (1 - t) * a + t * b",
    "log (1/K) Σ_k w_k",
    "penalty = F.contractive_penalty(h, W, 'tanh')",
    "(back,) = minae.grad(h, x, grad_outputs=probe, create_graph=True)",
]


@pytest.mark.parametrize("task, text", _REVIEWED_HITS)
def test_the_reviewers_hits_have_answer_forms(task, text):
    """Each answer the reviewer found, as it was written (code, Unicode prose, LaTeX, a figure's label), is one of
    its task's forms; none of the innocent lines beside them is any cut task's."""
    from minae.homework.answers import answers_in

    assert [t for t, _ in answers_in(text, [task], comments=True)] == [task], text
    for line in _INNOCENT:
        assert answers_in(line, ALL_TASKS, comments=True) == [], line


def test_every_text_a_copy_ships_is_read(copies, tmp_path):
    """The scan reads every shipped text, not only tests, hints and stubs' docstrings: a module docstring, a
    comment beside code, README.md, another Markdown file, a notebook's Markdown cell (LaTeX) and a code cell's
    comment, each planted with the sampler in an assignment-4 copy, are each found, and nothing else is."""
    from minae.homework.build import _cutter, _stubber, _verify, shipped_answers

    cut = _cutter(4, keep_later=False)
    nb_name = "notebooks/06-variational-autoencoder.ipynb"
    plants = {
        "minae/models/ebm.py": ('"""', '"""Noise enters as z = μ + √v ⊙ ε.\n\n'),
        "minae/optim/sgd.py": ("import", "# the sampler: z = mu + np.sqrt(var) * eps\nimport"),
        "README.md": ("# minae", "# minae\n\nThe sampler is z = μ + σ ⊙ ε.\n"),
        "docs-note.md": (None, "Remember: $z = \\mu + \\sqrt{v}\\,\\epsilon$.\n"),
    }
    for k, (rel, (old, new)) in enumerate(plants.items()):
        folder = tmp_path / f"c{k}"
        shutil.copytree(copies[4], folder)
        if old is None:
            (folder / rel).write_text(new, encoding="utf-8")
        else:
            text = (folder / rel).read_text(encoding="utf-8")
            assert old in text, (rel, old)
            (folder / rel).write_text(text.replace(old, new, 1), encoding="utf-8")
        assert [(f, t) for f, t, _ in shipped_answers(folder, cut)] == [(rel, "4.1")], rel
    for k, (kind, source) in enumerate(
        [
            (
                "markdown",
                "With $\\boldsymbol z = \\boldsymbol\\mu + \\sqrt{\\boldsymbol v} \\odot \\boldsymbol\\epsilon$",
            ),
            ("code", "z = encode(y)  # then z = mu + np.exp(0.5 * logvar) * eps"),
        ]
    ):
        folder = tmp_path / f"nb{k}"
        shutil.copytree(copies[4], folder)
        nb = json.loads((folder / nb_name).read_text(encoding="utf-8"))
        cell = {"cell_type": kind, "metadata": {}, "source": source}
        if kind == "code":
            cell.update(outputs=[], execution_count=None)
        nb["cells"].insert(3, cell)
        (folder / nb_name).write_text(json.dumps(nb), encoding="utf-8")
        assert [(f, t) for f, t, _ in shipped_answers(folder, cut)] == [(f"{nb_name}, cell 3", "4.1")], kind
        if kind == "markdown":  # the build warns of it too (a code cell's computing answer is warned of already)
            warnings = _verify(folder, ROOT, _stubber(4, keep_later=False), cut)
            assert [w for w in warnings if f"{nb_name}, cell 3 states task 4.1" in w], warnings


def test_an_answer_an_earlier_task_gives_is_not_a_later_tasks_leak(copies):
    """F.gaussian_kl (task 2.3, solved in the copies of assignments 3 and 4) computes the per-dimension KL that
    task 4.5 also asks for: the student has it, so the scan does not report it there; in a copy that cuts 2.3
    too, the same text is a leak of both."""
    from minae.homework.answers import answers_in

    code = "terms = var - _ops.log(var) - 1 + mu * mu"
    assert answers_in(code, ["4.5"], comments=True, given=["2.3"]) == []
    assert [t for t, _ in answers_in(code, ["2.3", "4.5"], comments=True)] == ["2.3", "4.5"]
    text = (copies[4] / "minae" / "nn" / "functional.py").read_text(encoding="utf-8")
    assert "var - _ops.log(var) - 1 + mu * mu" in text


def test_the_rewords_match_their_notebooks_and_leave_the_copies():
    """Every Reword's text is in the reference notebook it names (a stale one would silently reword nothing),
    and a copy that cuts its task has the new wording in its place; a copy that keeps the task keeps the text."""
    from minae.homework.answers import REWORDS

    assert REWORDS
    for r in REWORDS:
        (path,) = sorted((ROOT / "notebooks").glob(f"{r.notebook}*.ipynb"))
        nb = json.loads(path.read_text(encoding="utf-8"))
        hits = [k for k, c in enumerate(nb["cells"]) if r.old in "".join(c["source"])]
        assert hits, (path.name, r.old)
        n = TASKS[r.task].assignment
        cut = student_notebook(nb, n, path=path.name, rewords=[r])
        kept = student_notebook(nb, n - 1, keep_later=True, path=path.name, rewords=[r]) if n > 1 else None
        assert not any(r.old in c.source for c in cut.cells) and any(r.new in c.source for c in cut.cells)
        if kept is not None:
            assert any(r.old in c.source for c in kept.cells)


def test_the_scan_does_not_join_distant_lines(tmp_path):
    """A form may span lines, not a whole file: a ``randn(`` at the top of a long text and a ``.decoder(`` far
    below are no sampling answer; within a few lines they are."""
    from minae.homework.build import shipped_answers

    far = "z = minae.randn(4, 3)\n" + "\n".join(f"line {k}" for k in range(40)) + "\nout = model.decoder(h)\n"
    near = "z = minae.randn(4, 3)\nout = model.decoder(z)\n"
    for name, text, want in (("far", far, []), ("near", near, ["4.3"])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "NOTES.md").write_text(text, encoding="utf-8")
        got = [t for _, t, _ in shipped_answers(tmp_path / name, lambda task: task == "4.3")]
        assert got == want, name


def test_the_answer_forms_find_the_answers_the_reference_notebooks_compute():
    """The detector can fail: in the reference notebooks (nothing emptied) it finds each cell that an Exercise
    empties, for that Exercise's task or another cut task, and the copy's table is empty."""
    from minae.homework.build import _cutter, answer_cells

    for a in ASSIGNMENTS.values():
        found = {(f, k) for f, k, _, _ in answer_cells(ROOT, _cutter(a.number, keep_later=False))}
        for e in a.exercises:
            if e.notebook == "00":  # backward_by_hand: its lines are checked by the solution-line leak check
                continue
            (path,) = sorted((ROOT / "notebooks").glob(f"{e.notebook}*.ipynb"))
            (k,) = [k for k, source in _code_cells(path) if e.contains in source]
            assert (f"notebooks/{path.name}", k) in found, (e.notebook, e.contains)
    from minae.homework.answers import answers_in

    for source, task in [
        ("z = mu + (0.5 * logvar).exp() * minae.randn_like(mu)", "4.1"),
        ("z = mu[:, None] + np.exp(logvar / 2)[:, None] * eps", "4.1"),
        ("z = mu + var ** 0.5 * rng.standard_normal(mu.shape)", "4.1"),
        ("kl = 0.5 * (mu ** 2 + var - np.log(var) - 1)", "4.5"),
        ("kl = ((logvar.exp() - logvar - 1 + mu * mu) / 2).mean(0)", "4.5"),
        ("(g,) = minae.grad(model.energy(y, z).sum(), z)", "3.2"),
        ("images = m.decode(minae.randn(9, 2))", "4.3"),
    ]:
        assert [t for t, _ in answers_in(source, [task])] == [task], source
    assert answers_in("z = mu + np.sqrt(var)  # * eps in a comment only", ["4.1"]) == []
    assert answers_in("sd = np.sqrt(var).mean(0)", ["4.1"]) == []


@pytest.mark.parametrize("n", sorted(ASSIGNMENTS))
def test_each_exercise_picks_exactly_one_cell_of_its_notebook(n):
    """An Exercise's snippet selects one code cell (a notebook edited elsewhere must not make it select none)."""
    for e in ASSIGNMENTS[n].exercises:
        assert e.notebook in ASSIGNMENTS[n].notebooks, e
        (path,) = sorted((ROOT / "notebooks").glob(f"{e.notebook}*.ipynb"))
        hits = [k for k, source in _code_cells(path) if e.contains in source]
        assert len(hits) == 1, (e.notebook, e.contains, hits)
        if e.says:
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            assert e.says[0] in "".join(cells[hits[0] - 1]["source"]), (e.notebook, e.says[0])


def test_an_emptied_exercise_cell_notes_its_task_for_the_cells_after_it(capsys):
    from minae.homework import notebook

    notebook._unwritten.clear(), notebook._exercises.clear()
    notebook.exercise_not_written("not written yet: task 4.5: write per_dimension(m)")
    notebook.report_unwritten(NameError("name 'dims' is not defined"))
    out = capsys.readouterr().out
    assert "not written yet: task 4.5" in out and "this cell needs task 4.5" in out and "NameError" in out
    notebook._unwritten.clear(), notebook._exercises.clear()

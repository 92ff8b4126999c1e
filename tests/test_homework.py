"""The homework scaffolding: student copies built from the reference code, graded locally.

Every assignment is built once per session; the gradings (each a pytest run in a
separate process, as a student's would be) run two at a time in one fixture, and
the tests below read their results.
"""

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

try:
    import nbformat
except ImportError:  # in the `test` extra
    nbformat = None

from minae.homework import ASSIGNMENTS, TASKS, build, grade, problems, put_back, scan
from minae.homework.build import MANIFEST, reference_root, student_notebook
from minae.homework.markers import MarkerError, find_blocks, find_stubs, has_marker, strip_blocks

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


def _planted(copies, work: Path) -> Path:
    """Assignment 1 with task 1.1 solved, but Exp.backward's sign flipped."""
    folder = work / "planted"
    shutil.copytree(copies[1], folder)
    put_back(folder, "1.1")
    ops = folder / "minae" / "ops.py"
    text = ops.read_text(encoding="utf-8")
    wrong = text.replace("return gy * y  # d e^x = e^x", "return -gy * y", 1)
    assert wrong != text
    ops.write_text(wrong, encoding="utf-8")
    return folder


def _tampered(copies, work: Path) -> Path:
    """Assignment 4 as built, with task 4.1's tests replaced by one that always passes."""
    folder = work / "tampered"
    shutil.copytree(copies[4], folder)
    (folder / "minae" / "homework" / "tests" / "assignment4" / "test_task_4_1.py").write_text(
        "def test_ok():\n    pass\n"
    )
    return folder


def _broken(copies, work: Path) -> Path:
    """Assignment 4 with a syntax error in the library."""
    folder = work / "broken"
    shutil.copytree(copies[4], folder)
    vae = folder / "minae" / "models" / "vae.py"
    vae.write_text(vae.read_text(encoding="utf-8") + "\ndef oops(:\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def gradings(copies, tmp_path_factory):
    """Every grading the tests look at, run two at a time: key -> GradeResult (or CompletedProcess)."""
    work = tmp_path_factory.mktemp("gradings")
    jobs = {}
    for n, folder in copies.items():
        jobs[("built", n)] = lambda folder=folder: grade(folder, stream=False)
        jobs[("reference", n)] = lambda n=n: grade(ROOT, n, stream=False)
        jobs[("import", n)] = lambda folder=folder: _import_copy(folder)
    for task in ALL_TASKS:
        folder = work / f"task{task}"
        shutil.copytree(copies[TASKS[task].assignment], folder)
        put_back(folder, task)
        jobs[("task", task)] = lambda folder=folder: grade(folder, stream=False)
    planted, broken, tampered = _planted(copies, work), _broken(copies, work), _tampered(copies, work)
    jobs[("planted",)] = lambda: _cli_grade(planted)
    jobs[("cli reference",)] = lambda: _cli_grade(ROOT, "--assignment", "4")
    jobs[("broken",)] = lambda: grade(broken, stream=False)
    jobs[("tampered",)] = lambda: grade(tampered, stream=False)
    jobs[("tampered, fresh tests",)] = lambda: grade(tampered, stream=False, fresh_tests=True)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {key: pool.submit(job) for key, job in jobs.items()}
        return {key: f.result() for key, f in futures.items()}


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


@pytest.mark.slow
@pytest.mark.parametrize("n", sorted(ASSIGNMENTS))
def test_built_copy_imports_its_own_minae(copies, gradings, n):
    assert Path(gradings[("import", n)]).resolve().is_relative_to(copies[n].resolve())


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


@pytest.mark.slow
@pytest.mark.parametrize("n", sorted(ASSIGNMENTS))
def test_built_copy_scores_zero(copies, gradings, n):
    result = gradings[("built", n)]
    assert Path(result.minae_file).resolve().is_relative_to(copies[n].resolve())
    assert not result.ok and result.earned == 0
    for t in result.tasks:
        assert t.total > 0 and t.passed == 0, (t.id, t.passed, t.total)
        assert f"not written yet (task {t.id}:" in t.failure, t.failure


@pytest.mark.slow
@pytest.mark.parametrize("n", sorted(ASSIGNMENTS))
def test_reference_scores_full_marks(gradings, n):
    result = gradings[("reference", n)]
    assert result.ok, result.table()
    assert result.earned == result.points == ASSIGNMENTS[n].points
    assert Path(result.minae_file).resolve().is_relative_to(ROOT)


@pytest.mark.slow
@pytest.mark.parametrize("task", ALL_TASKS)
def test_putting_back_one_solution_completes_exactly_that_task(gradings, task):
    result = gradings[("task", task)]
    for t in result.tasks:
        if t.id == task:
            assert t.complete, f"task {task} put back: {t.passed}/{t.total}, {t.failure}"
        else:
            assert t.passed == 0, f"task {task} put back, task {t.id} passes {t.passed}/{t.total}"


@pytest.mark.slow
def test_planted_sign_error_is_caught_and_named(gradings):
    proc = gradings[("planted",)]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = proc.stdout.splitlines()
    row = next(i for i, line in enumerate(rows) if line.startswith("1.1 "))
    assert "/5" in rows[row] and "20/20" not in rows[row]
    reason = rows[row + 1]
    assert "✗ test_exp_backward: gradcheck failed for exp(x)" in reason
    assert "backward gives" in reason and "finite differences give" in reason


@pytest.mark.slow
def test_cli_grade_exit_status_zero_when_everything_passes(gradings):
    proc = gradings[("cli reference",)]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "100/100" in proc.stdout


@pytest.mark.slow
def test_a_copy_that_does_not_import_scores_zero_with_the_reason(gradings):
    result = gradings[("broken",)]
    for t in result.tasks:
        assert t.passed == 0
        assert "could not be imported: SyntaxError" in t.failure and "vae.py" in t.failure, t.failure


@pytest.mark.slow
def test_fresh_tests_ignore_a_students_edited_tests(gradings):
    assert gradings[("tampered",)].task("4.1").complete  # the copy's own (edited) tests pass
    fresh = gradings[("tampered, fresh tests",)]
    assert fresh.fresh_tests and not fresh.warnings
    assert fresh.task("4.1").total > 1 and all(t.passed == 0 for t in fresh.tasks)
    assert "(with the grader's own tests)" in fresh.table()


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
    assert [task for _, _, task in find_stubs(adam.splitlines())] == ["2.6"]
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
    exercise, plain = out["cells"][1], out["cells"][2]
    assert "mu + std" not in "".join(exercise["source"])
    assert 'raise NotImplementedError("task 4.1: draw eps")' in "".join(exercise["source"])
    assert exercise["metadata"]["tags"] == ["task 4.1", "exercise"]
    assert exercise["outputs"] == [] and plain["outputs"] == [] and plain["execution_count"] is None
    assert 'grade("..", assignment=4)' in "".join(out["cells"][-1]["source"])
    assert out["cells"][-1]["id"] and nb["cells"][1]["outputs"]  # the original is left alone
    kept = student_notebook(nb, 3, keep_later=True)  # a later assignment's cell stays as it is
    assert "".join(kept["cells"][1]["source"]) == "".join(nb["cells"][1]["source"])

"""Build a student copy of the project for one assignment, from the reference code.

What goes in: the ``minae`` package (with the assignment's solution blocks replaced
by stubs), ``setup.cfg``, ``pyproject.toml``, ``README.md``, the assignment's tests
(``minae/homework/tests/assignmentN/``), its notebooks (outputs cleared, exercise
cells emptied, a grader cell at the end), ``HOMEWORK.md`` (the tasks and where they
are) and ``.minae-homework.json`` (which assignment this is). What stays out: the
library's own tests, the other assignments' tests, benchmarks, ``.git``, caches and
byte-compiled files.

Earlier assignments' code is left solved. Later assignments' code is stubbed too
by default (a copy for assignment 1 must not hand out the answers to assignment 2);
``keep_later=True`` leaves it solved, for a course that hands out one assignment only.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from pathlib import Path

from .answers import REWORDS
from .assignments import ASSIGNMENTS, TASKS, assignment_of, hint_for
from .markers import (
    MarkerError,
    enclosing_name,
    find_blocks,
    find_sections,
    find_stubs,
    has_marker,
    has_section_marker,
    strip_blocks,
    strip_sections,
)

__all__ = [
    "MANIFEST",
    "build",
    "readme_task_table",
    "with_task_table",
    "reference_root",
    "scan",
    "problems",
    "put_back",
    "leaked_lines",
    "answer_cells",
    "shipped_answers",
    "student_notebook",
]

MANIFEST = ".minae-homework.json"
TOP_FILES = ("setup.cfg", "pyproject.toml", "README.md", "LICENSE", "LICENSE.txt", "LICENSE.md", ".gitignore")
_SKIP_DIRS = {"__pycache__", ".git", ".pytest_cache", ".ruff_cache", ".hypothesis", ".ipynb_checkpoints"}
_SKIP_SUFFIXES = (".pyc", ".pyo")
_HOMEWORK = ("minae", "homework")


def reference_root() -> Path:
    """The project folder this ``minae`` was installed from (a clone, installed with ``pip install -e .``)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "setup.cfg").is_file() or not (root / "minae").is_dir():
        raise FileNotFoundError(
            f"{root} is not a minae project folder: build student copies from a clone of the repository "
            "(pip install -e . there), or pass source=/path/to/the/clone"
        )
    return root


def _is_library_source(rel: Path) -> bool:
    """A .py file of the library (where solution blocks live): not the homework machinery itself."""
    return rel.suffix == ".py" and rel.parts[:1] == ("minae",) and rel.parts[:2] != _HOMEWORK


def _has_sections(rel: Path) -> bool:
    """A file that may hold formula or grader-only sections: the library's, the tests', the helpers'."""
    if rel.suffix != ".py" or rel.parts[:1] != ("minae",):
        return False
    if rel.parts[:2] != _HOMEWORK or rel.parts[:3] == _HOMEWORK + ("tests",):
        return True
    return rel.parts[2:] in (("_helpers.py",), ("answers.py",))


def _package_files(src: Path):
    """Every file of the package, as paths relative to ``src``, in a stable order."""
    for path in sorted((src / "minae").rglob("*")):
        rel = path.relative_to(src)
        if any(part in _SKIP_DIRS for part in rel.parts) or path.suffix in _SKIP_SUFFIXES:
            continue
        if path.is_file() and not path.is_symlink():
            yield rel


def scan(source=None) -> list:
    """Every solution block of the reference library, with paths relative to the project root."""
    src = Path(source) if source is not None else reference_root()
    blocks = []
    for rel in _package_files(src):
        if _is_library_source(rel):
            blocks.extend(find_blocks((src / rel).read_text(encoding="utf-8"), rel.as_posix()))
    return blocks


def problems(source=None) -> list:
    """What is wrong with the marking, as readable lines (empty when all is well).

    Checks the markers' form, that every block belongs to a known task, that every
    task has at least one block and a test file, and that every assignment's
    stubbed files still compile.
    """
    src = Path(source) if source is not None else reference_root()
    found = []
    try:
        blocks = scan(src)
    except MarkerError as e:
        return [str(e)]
    for b in blocks:
        if b.task not in TASKS:
            found.append(f"{b.path}:{b.line}: task {b.task} is not in minae/homework/assignments.py")
    sectioned = {}
    for rel in _package_files(src):
        if _has_sections(rel):
            try:
                sections = find_sections((src / rel).read_text(encoding="utf-8"), rel.as_posix())
            except MarkerError as e:
                found.append(str(e))
                continue
            if sections:
                sectioned[rel.as_posix()] = sections
            for s in sections:
                if s.kind == "FORMULA" and s.task not in TASKS:
                    found.append(f"{rel.as_posix()}:{s.line}: formula of task {s.task}, not in assignments.py")
    marked = {b.task for b in blocks}
    for task in TASKS.values():
        if task.id not in marked:
            found.append(f"task {task.id} ({task.title}) has no solution block in the library")
        if not (src / task.test_file).is_file():
            found.append(f"task {task.id} ({task.title}) has no tests: {task.test_file} is missing")
    tests_root = src / "minae" / "homework" / "tests"
    for test in sorted(tests_root.glob("assignment*/test_*.py")):
        task = _task_of_test_file(test.name)
        if task is None or task not in TASKS or f"assignment{TASKS[task].assignment}" != test.parent.name:
            found.append(f"{test.relative_to(src)}: not a test_task_N_M.py file of a task of its assignment")
    for number in ASSIGNMENTS:
        stub = _stubber(number, keep_later=True)
        for path in sorted({b.path for b in blocks if b.task in TASKS and TASKS[b.task].assignment == number}):
            text, _ = strip_blocks((src / path).read_text(encoding="utf-8"), stub, path)
            text, _ = strip_sections(text, _cutter(number, keep_later=True), path)
            try:
                compile(text, path, "exec")
            except SyntaxError as e:
                found.append(f"{path}: with assignment {number} stubbed the file does not compile: {e}")
        for path in sorted(set(sectioned) - {b.path for b in blocks}):
            text, _ = strip_sections((src / path).read_text(encoding="utf-8"), _cutter(number, False), path)
            try:
                compile(text, path, "exec")
            except SyntaxError as e:
                found.append(f"{path}: in a copy of assignment {number} (sections cut) it does not compile: {e}")
    return found


def _task_of_test_file(name: str):
    """``test_task_1_3.py`` -> ``"1.3"``; None for any other name."""
    stem = name[:-3] if name.endswith(".py") else name
    parts = stem.split("_")
    if len(parts) == 4 and parts[:2] == ["test", "task"] and parts[2].isdigit() and parts[3].isdigit():
        return f"{int(parts[2])}.{int(parts[3])}"
    return None


def _cutter(number: int, keep_later: bool):
    """cut(task) -> whether a copy of assignment ``number`` cuts ``task`` out (and so its formulas)."""

    def cut(task_id):
        task = TASKS.get(task_id)
        return task is not None and (task.assignment == number or (task.assignment > number and not keep_later))

    return cut


def _stubber(number: int, keep_later: bool):
    """stub(block) -> the stub's message for the blocks a copy of assignment ``number`` cuts out, else None."""

    def stub(block):
        task = TASKS.get(block.task)
        if task is None:
            raise MarkerError(f"{block.path}:{block.line}: task {block.task} is not in minae/homework/assignments.py")
        if task.assignment == number:
            hint = hint_for(task.id, getattr(block, "name", ""), getattr(block, "occurrence", 0)) or block.hint
            return f"task {task.id}: {hint or task.title}"
        if task.assignment > number and not keep_later:
            later = ASSIGNMENTS[task.assignment]
            return f"task {task.id}: part of assignment {later.number} ({later.title}), not of this one"
        return None

    return stub


# ------------------------------------------------------------------ notebooks ---
def _nbformat():
    try:
        import nbformat
    except ImportError:
        raise ImportError("building a student copy's notebooks needs nbformat: pip install nbformat") from None
    return nbformat


def _cell_source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _cell_task(tags):
    for tag in tags:
        parts = tag.split()
        if len(parts) == 2 and parts[0] == "task" and parts[1] in TASKS:
            return parts[1]
    return None


_CHECK_COPY = """\
# This notebook belongs to a student copy of minae: make sure the kernel runs that copy's minae
# (a kernel whose environment has another minae installed would silently run that one).
import pathlib

import minae

_copy = pathlib.Path.cwd().resolve().parent  # the copy's folder: the one above notebooks/
_used = pathlib.Path(minae.__file__).resolve().parents[1]
if _used != _copy:
    raise RuntimeError(
        f"this kernel imports minae from {_used}, not from the copy {_copy}: "
        "run `pip install -e .` in the copy, in this kernel's environment, and restart the kernel"
    )
print("minae from", _used)

from minae.homework.notebook import skip_unwritten_tasks

skip_unwritten_tasks()  # a cell that needs a task you have not written says so, and Run All goes on
"""


def student_notebook(
    nb: dict, number: int, keep_later: bool = False, path: str = "<notebook>", exercises=(), rewords=()
) -> dict:
    """A student's copy of a notebook (through nbformat): outputs cleared, exercise cells emptied, checks added.

    An exercise cell is a code cell tagged ``solution`` and ``task N.M``
    (cell metadata ``"tags": ["solution", "task 1.5"]``), or one that an
    ``Exercise`` of ``exercises`` picks by its source; it is emptied when the copy
    cuts task N.M out, into a cell that only says so (Run All goes on). Solution
    blocks inside code cells are stripped as in the library's files. A first cell
    checks that the kernel imports the copy's minae; the last ones run the grader. Each ``Reword`` of
    ``rewords`` whose task the copy cuts out replaces its text in every cell, Markdown or code, that has it.
    """
    nbf = _nbformat()
    nb = nbf.from_dict(copy.deepcopy(nb))
    if nb.get("nbformat", 4) < 4:
        nb = nbf.convert(nb, 4)
    stub = _stubber(number, keep_later)
    nb.metadata.pop("widgets", None)
    cells, emptied = [], []
    cut = _cutter(number, keep_later)
    for index, cell in enumerate(nb.cells):
        cell.source = _cell_source(cell)  # one string, as nbformat writes it
        for r in rewords:
            if cut(r.task) and r.old in cell.source:
                cell.source = cell.source.replace(r.old, r.new)
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            cells.append(cell)
            continue
        cell.outputs = []
        cell.execution_count = None
        tags = list(cell.metadata.get("tags", []))
        task = _cell_task(tags)
        source = _cell_source(cell)
        where = f"{path}, cell {index}"
        picked = next((e for e in exercises if e.contains in source), None)
        if picked is not None:
            tags, task = ["solution", f"task {picked.task}"], picked.task
        if "solution" in tags and task is not None:
            hint = picked.hint if picked is not None else None
            hint = hint or next(
                (ln.split("HINT:", 1)[1].strip() for ln in source.splitlines() if "# HINT:" in ln), None
            )
            message = stub(_NotebookBlock(where, task, hint))
            if message is not None:
                if picked is not None and picked.says and cells and cells[-1].cell_type == "markdown":
                    old, new = picked.says
                    cells[-1].source = _cell_source(cells[-1]).replace(old, new)
                cell.source = (
                    f"# Exercise, task {task}: {hint or TASKS[task].title}\n"
                    "# Write your code in this cell, in place of the line below. The cell itself is not graded:\n"
                    f"# task {task}'s points come from its tests (minae-homework grade .).\n"
                    "# Until you write it, Run All goes on (the cells that need its results say so).\n"
                    "from minae.homework.notebook import exercise_not_written\n\n"
                    f"exercise_not_written({('not written yet: ' + message)!r})\n"
                )
                kept = [t for t in cell.metadata.get("tags", []) if t not in ("solution", f"task {task}", "exercise")]
                cell.metadata["tags"] = kept + [f"task {task}", "exercise"]
                emptied.append(task)
        elif any(has_marker(line) for line in source.splitlines()):
            text, _ = strip_blocks(source, stub, where)
            cell.source = text
        cells.append(cell)
    check = nbf.v4.new_code_cell(_CHECK_COPY, metadata={"tags": ["check-copy"]})
    nb.cells = [check] + cells + _grader_cells(nbf, number, emptied)
    for k, cell in enumerate(nb.cells):  # ids that are the same in every build of the copy
        cell.pop("id", None)
        if (nb.nbformat, nb.nbformat_minor) >= (4, 5):
            cell["id"] = f"cell-{k}"
    nbf.validate(nb)
    return nb


class _NotebookBlock:
    """What a stub message needs to know about an exercise cell (the attributes of a Block)."""

    def __init__(self, path, task, hint):
        self.path, self.task, self.hint, self.line = path, task, hint, 0


def _grader_cells(nbf, number: int, emptied) -> list:
    exercises = ""
    if emptied:
        listed = ", ".join(sorted(set(emptied)))
        exercises = (
            f"\nThe exercise cells above (task {listed}) are practice and are not graded themselves: the points "
            "come from the tests of the library code you write.\n"
        )
    markdown = (
        "## Check your work\n\n"
        f"The next cell grades assignment {number} on this copy of minae (the folder above `notebooks/`): one\n"
        "line per task, its points, and the first failing check of each unfinished task. What is graded is the\n"
        "library code each task names in HOMEWORK.md, run against the assignment's tests.\n"
        f"{exercises}\n"
        "In a terminal, `minae-homework grade .` in the project folder does the same; while you work on one\n"
        'task, `minae.homework.check("1.3")` runs its tests in this kernel (quick feedback, not the grade).'
    )
    code = f'from minae.homework import grade\n\nresult = grade("..", assignment={number})'
    return [nbf.v4.new_markdown_cell(markdown), nbf.v4.new_code_cell(code, metadata={"tags": ["grader"]})]


def _notebooks_of(src: Path, prefixes) -> list:
    folder = src / "notebooks"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.ipynb") if any(p.name.startswith(prefix) for prefix in prefixes))


# ---------------------------------------------------------------------- build ---
def _check_out(out: Path, src: Path, force: bool) -> None:
    if (
        out == src
        or out in src.parents
        or any((src / inner) == out or (src / inner) in out.parents for inner in ("minae", "notebooks", "tests"))
    ):
        raise ValueError(f"cannot build into {out}: it overlaps the reference project {src}")
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"{out} exists and is not a folder")
        if any(out.iterdir()) and not (force and (out / MANIFEST).is_file()):
            raise FileExistsError(
                f"{out} is not empty: choose a new folder, or pass --force to replace an earlier student copy "
                f"(a folder with {MANIFEST} in it)"
            )


def build(assignment, out, source=None, keep_later: bool = False, force: bool = False) -> dict:
    """Write the student copy of ``assignment`` into the folder ``out``; returns its manifest.

    The copy is built in a temporary folder next to ``out`` and moved into place at
    the end, so an interrupted build leaves nothing half-written.
    """
    a = assignment_of(assignment)
    src = (Path(source) if source is not None else reference_root()).resolve()
    out = Path(out).resolve()
    _check_out(out, src, force)
    issues = problems(src)
    if issues:
        raise MarkerError("the reference code's homework marking has problems:\n  " + "\n  ".join(issues))
    stub = _stubber(a.number, keep_later)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        stubbed = _write_copy(src, staging, a, stub, _cutter(a.number, keep_later))
        _write_ruff_config(staging, sorted({f for _, f, _, _ in stubbed}))
        stubbed = [row for row in stubbed if row[0] is not None]
        notebooks, exercise_cells = [], []
        for nb_path in _notebooks_of(src, a.notebooks):
            nb = json.loads(nb_path.read_text(encoding="utf-8"))
            picked = [e for e in a.exercises if nb_path.name.startswith(e.notebook)]
            rewords = [r for r in REWORDS if nb_path.name.startswith(r.notebook)]
            student = student_notebook(nb, a.number, keep_later, f"notebooks/{nb_path.name}", picked, rewords)
            target = staging / "notebooks" / nb_path.name
            target.parent.mkdir(exist_ok=True)
            target.write_text(_nbformat().writes(student) + "\n", encoding="utf-8")
            notebooks.append(f"notebooks/{nb_path.name}")
            exercise_cells += [
                (f"notebooks/{nb_path.name}", tag.split()[1])
                for c in student.cells
                if "exercise" in c.metadata.get("tags", [])
                for tag in c.metadata["tags"]
                if tag.startswith("task ")
            ]
        warnings = _verify(staging, src, stub, _cutter(a.number, keep_later))
        manifest = _manifest(a, stubbed, notebooks, keep_later)
        manifest["exercise_cells"] = [{"notebook": n, "task": task} for n, task in exercise_cells]
        manifest["warnings"] = warnings
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        (staging / "HOMEWORK.md").write_text(_homework_md(a, manifest), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _write_copy(src: Path, dst: Path, a, stub, cut=None) -> list:
    """Copy the package (stubbing the library's blocks) and the top-level files; returns the stubbed blocks."""
    stubbed = []
    own_tests = ("minae", "homework", "tests", f"assignment{a.number}")
    for rel in _package_files(src):
        if rel.parts[:3] == own_tests[:3] and len(rel.parts) > 4 and rel.parts[:4] != own_tests:
            continue  # another assignment's tests
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if _is_library_source(rel) or _has_sections(rel):
            text, blocks = (src / rel).read_text(encoding="utf-8"), []
            if _is_library_source(rel):
                text, blocks = strip_blocks(text, stub, rel.as_posix())
            text, sections = strip_sections(text, cut or (lambda task: False), rel.as_posix())
            if any(x.kind == "GRADER ONLY" for x in sections):  # its imports may serve the grader's part only
                stubbed.append((None, rel.as_posix(), 0, ""))
            if blocks or sections:
                compile(text, rel.as_posix(), "exec")  # a stub in the wrong place is a SyntaxError: fail here
                for first, _, task in find_stubs(text.splitlines()):
                    stubbed.append((task, rel.as_posix(), first + 1, enclosing_name(text, first)))
            target.write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(src / rel, target)
    for name in TOP_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    if (dst / "README.md").is_file():  # the task table follows assignments.py, whatever the README says
        readme = (dst / "README.md").read_text(encoding="utf-8")
        (dst / "README.md").write_text(with_task_table(readme), encoding="utf-8")
    return stubbed


def _write_ruff_config(root: Path, stubbed_files: list) -> None:
    """ruff.toml: the project's settings, quiet about the names a stub leaves unused or undefined.

    So that ``ruff check --fix`` in a student copy never deletes an import that the
    student's code will need (``heapq`` in autograd.py, while task 1.5 is a stub).
    """
    if not stubbed_files or not (root / "pyproject.toml").is_file():
        return
    lines = [
        "# A student copy: until a stub is written, names it would use are unused or undefined.",
        'extend = "pyproject.toml"',
        "",
        "[lint.extend-per-file-ignores]",
    ]
    # B007: a loop whose body is the stub; E501: a stub's long hint
    lines += [f'"{f}" = ["F401", "F841", "F821", "B007", "E501"]' for f in stubbed_files]
    (root / "ruff.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _manifest(a, stubbed, notebooks, keep_later) -> dict:
    from .. import __version__

    tasks = []
    for t in a.tasks:
        where = [{"file": f, "line": line, "name": name} for task, f, line, name in stubbed if task == t.id]
        tasks.append({"id": t.id, "title": t.title, "points": t.points, "where": where})
    later = [task for task, *_ in stubbed if TASKS[task].assignment > a.number]
    return {
        "assignment": a.number,
        "title": a.title,
        "minae_version": __version__,
        "tasks": tasks,
        "notebooks": notebooks,
        "later_assignments": "solved" if keep_later else "stubbed",
        "later_tasks_stubbed": sorted(set(later)),
    }


def _homework_md(a, manifest) -> str:
    """HOMEWORK.md from its template (templates/HOMEWORK.md): the tasks, where they are, how to grade."""
    from string import Template

    rows = []
    for t in manifest["tasks"]:
        where = "<br>".join(f"`{w['file']}` line {w['line']}: `{w['name']}`" for w in t["where"])
        minutes = TASKS[t["id"]].minutes if t["id"] in TASKS else 0
        rows.append(f"| {t['id']} | {t['title']} | {t['points']} | {_duration(minutes)} | {where} |")
    later = ""
    if manifest["later_tasks_stubbed"]:
        later = (
            "The pieces of later assignments are cut out too (their stubs say which assignment they\n"
            "belong to), so a few parts of the library (for example `minae train`) wait for those.\n"
        )
    total = f"Total: {a.points} points."
    if a.points != 100:
        total += f" (The points add up to {a.points}, not 100: your grade is out of {a.points}.)"
    notebooks = ""
    if manifest["notebooks"]:
        listed = ", ".join(f"`{n}`" for n in manifest["notebooks"])
        notebooks = (
            f"\n## Notebooks\n\n{listed}: read along; the cells that use your tasks run once you have\n"
            "written them. The first cell checks that the notebook runs this copy's minae; the last one\n"
            "runs the grader.\n"
        )
    exercises = ""
    cells = manifest.get("exercise_cells", [])
    if cells:
        listed = ", ".join(f"`{c['notebook']}` (task {c['task']})" for c in cells)
        exercises = (
            f"\nExercise cells: {listed}. Each is emptied in this copy (tagged `exercise`); write it there.\n"
            "Until you do, it prints that it is not written yet and Run All goes on. The exercise cells are\n"
            "practice: they are not graded themselves; the task's points come from its tests.\n"
        )
    questions = ""
    if a.questions:
        listed = "\n".join(f"{k}. {q}" for k, q in enumerate(a.questions, 1))
        questions = (
            "\n## Derive, then write\n\n"
            "Answer these on paper before you write the code: the docstrings of this copy leave the closed forms\n"
            "out, and each answer is what one task's code computes (its tests check the numbers).\n\n"
            f"{listed}\n"
        )
    text = (Path(__file__).with_name("templates") / "HOMEWORK.md").read_text(encoding="utf-8")
    return Template(text).substitute(
        questions=questions,
        time=f" About {_duration(a.minutes)} in all, for a student who followed the lecture." if a.minutes else "",
        number=a.number,
        title=a.title,
        later=later,
        rows="\n".join(rows),
        total=total,
        notebooks=notebooks,
        exercises=exercises,
    )


def _duration(minutes: int) -> str:
    """About how long, for a person: "45 min", "2 h", "2 h 30 min" ("–" when not estimated)."""
    if not minutes:
        return "–"
    hours, rest = divmod(int(minutes), 60)
    return " ".join(part for part in (f"{hours} h" if hours else "", f"{rest} min" if rest else "") if part)


def readme_task_table() -> str:
    """The README's table of assignments, generated from assignments.py (so it cannot drift)."""
    lines = ["| assignment | tasks (points, about how long) | notebooks |", "|---|---|---|"]
    for a in ASSIGNMENTS.values():
        tasks = " · ".join(
            f"{t.id} {t.title} ({t.points}" + (f", {_duration(t.minutes)})" if t.minutes else ")") for t in a.tasks
        )
        about = f", about {_duration(a.minutes)}" if a.minutes else ""
        lines.append(f"| {a.number} · {a.title} ({a.points} points{about}) | {tasks} | {', '.join(a.notebooks)} |")
    return "\n".join(lines)


def with_task_table(readme: str) -> str:
    """``readme`` with its table of assignments (the one headed ``| assignment |``) regenerated."""
    lines = readme.split("\n")
    start = next((i for i, line in enumerate(lines) if line.startswith("| assignment |")), None)
    if start is None:
        return readme
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join(lines[:start] + readme_task_table().split("\n") + lines[end:])


def _verify(root: Path, src: Path, stub, cut=None) -> list:
    """Refuse a copy with markers, byte-compiled files, a .git folder or a line of a cut-out solution.

    A notebook that repeats a line of a cut-out solution is only a warning (returned):
    a short line can be innocent there (``h = self.encode(y)`` in another model), and a
    notebook edited by someone else should not stop a teacher's build. The tests
    (tests/test_homework.py) require none, so it is seen and fixed: by tagging the
    cell as an exercise (see student_notebook), or by writing it differently.
    """
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.name in ("__pycache__", ".git") or path.suffix in _SKIP_SUFFIXES:
            raise RuntimeError(f"internal error: the student copy contains {rel}")
        if path.suffix in (".py", ".ipynb") and rel.parts[:2] != _HOMEWORK:
            for n, line in enumerate(_text_lines(path), 1):
                if has_marker(line):
                    raise RuntimeError(f"internal error: {rel}:{n} still has a solution marker: {line.strip()!r}")
        if path.suffix in (".py", ".ipynb") and (rel.parts[:2] != _HOMEWORK or _has_sections(rel)):
            for n, line in enumerate(_text_lines(path), 1):
                if has_section_marker(line):
                    raise RuntimeError(f"internal error: {rel}:{n} still has a section marker: {line.strip()!r}")
    leaks = leaked_lines(root, src, stub, cut=cut)
    package = [(f, line) for f, line in leaks if not f.endswith(".ipynb")]
    if package:
        shown = "; ".join(f"{f}: {line!r}" for f, line in package[:5])
        raise RuntimeError(f"internal error: solution text left in the student copy: {shown}")
    warnings = [f"{f} repeats a line of a cut-out solution: {line!r}" for f, line in leaks if f.endswith(".ipynb")]
    if cut is not None:
        computed = answer_cells(root, cut)
        warnings += [
            f"{f}, cell {index} computes task {task}'s answer ({what}): empty it with an Exercise in assignments.py"
            for f, index, task, what in computed
        ]
        computed = {(f"{f}, cell {index}", task, what) for f, index, task, what in computed}
        warnings += [
            f"{f} states task {task}'s answer ({what}): "
            + ("reword it (a Reword in answers.py)" if ", cell " in f else "cut it (FORMULA) or check numbers")
            for f, task, what in shipped_answers(root, cut)
            if (f, task, what) not in computed
        ]
    return warnings


def answer_cells(root, cut) -> list:
    """(notebook, cell index, task, what) for every code cell of the copy ``root``'s notebooks that computes
    the answer of a task the copy cuts out (``cut(task)``), by the grader's forms in ``answers.ANSWERS``."""
    from .answers import ANSWERS, answers_in

    tasks = [t for t in ANSWERS if cut(t)]
    found = []
    for path in sorted(Path(root).glob("notebooks/*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        for index, cell in enumerate(cells):
            if cell.get("cell_type") == "code":
                for task, what in answers_in(_cell_source(cell), tasks):
                    found.append((f"notebooks/{path.name}", index, task, what))
    return found


def _stub_docstrings(root: Path) -> list:
    """(file, docstring) of every function of the copy's library that holds a stub (what the student reads
    beside the code they write)."""
    import ast

    found = []
    for path in sorted((Path(root) / "minae").rglob("*.py")):
        rel = path.relative_to(root)
        if not _is_library_source(rel):
            continue
        text = path.read_text(encoding="utf-8")
        if "NotImplementedError" not in text:
            continue
        stubs = {first + 1 for first, _, _ in find_stubs(text.splitlines())}
        if not stubs:
            continue
        for node in ast.walk(ast.parse(text, rel.as_posix())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                doc = ast.get_docstring(node)
                if doc and any(node.lineno <= line <= node.end_lineno for line in stubs):
                    found.append((rel.as_posix(), doc))
    return found


_SHIPPED_TEXT = (".py", ".md", ".txt", ".rst", ".cfg", ".toml", ".ipynb")


def _shipped_texts(root: Path):
    """(where, text) for every text a copy ships: each .py file whole (code, comments, docstrings), each
    Markdown or other text file, and each notebook cell, code or Markdown, on its own."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or path.suffix not in _SHIPPED_TEXT or any(p in _SKIP_DIRS for p in rel.parts):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if path.suffix != ".ipynb":
            yield rel.as_posix(), text
            continue
        try:
            cells = json.loads(text).get("cells", [])
        except ValueError:
            yield rel.as_posix(), text
            continue
        for index, cell in enumerate(cells):
            yield f"{rel.as_posix()}, cell {index}", _cell_source(cell)


def shipped_answers(root, cut) -> list:
    """(file, task, what) for every place of the copy ``root`` that states the answer of a task it cuts out
    (``cut(task)``), by the grader's forms in ``answers.ANSWERS``.

    Every text the copy ships is read, code and prose alike: every .py file whole (the library's, the
    tests', the homework machinery's: code, comments and docstrings), README.md, HOMEWORK.md and any other
    text file, and every notebook cell, code or Markdown. A task's answer that a student may read in a
    copy is one they need not derive, wherever it is printed.
    """
    from .answers import ANSWERS, answers_in

    root = Path(root)
    tasks = [t for t in ANSWERS if cut(t)]
    # an answer that a task the copy keeps solved also gives (the per-dimension KL of 4.5 is 2.3's gaussian_kl
    # term by term) is the student's own work by then, not a leak of the later task
    given = [t for t in ANSWERS if not cut(t)]
    found = []
    for where, text in _shipped_texts(root):
        # the whole text first (most match nothing); a form it matches must then match within some window
        suspects = sorted({task for task, _ in answers_in(text, tasks, comments=True, given=given)})
        for window in _windows(text) if suspects else ():
            for task, what in answers_in(window, suspects, comments=True, given=given):
                found.append((where, task, what))
    found += [(f"{f}, cell {index}", task, what) for f, index, task, what in answer_cells(root, cut)]
    return list(dict.fromkeys(found))


def _windows(text: str, size: int = 16):
    """The text in overlapping runs of ``size`` lines (every run of up to size/2 + 1 lines lies inside one):
    a form may span lines, but not join a ``randn(`` at the top of a README to a ``decoder(`` far below it."""
    lines = text.split("\n")
    if len(lines) <= size:
        yield text
        return
    for start in range(0, len(lines) - size // 2, size // 2):
        yield "\n".join(lines[start : start + size])


def _text_lines(path: Path) -> list:
    """A file's lines; for a notebook, the lines of its cells' sources and outputs."""
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return []
    if path.suffix != ".ipynb":
        return text.splitlines()
    lines = []
    for cell in json.loads(text).get("cells", []):
        lines.extend(_cell_source(cell).splitlines())
        for output in cell.get("outputs", []):
            pieces = [output.get("text", "")] + list(output.get("data", {}).values())
            for piece in pieces:
                if isinstance(piece, str):
                    lines.extend(piece.splitlines())
                elif isinstance(piece, list):
                    lines.extend("".join(piece).splitlines())
    return lines


def _secret_lines(src: Path, stub, cut=None) -> set:
    """The stripped lines of the cut-out blocks (and the cut-out formulas: ``cut(task)``, see ``_cutter``)
    that appear nowhere else in the library's source."""
    secret, public = set(), set()
    for rel in _package_files(src):
        if not _is_library_source(rel):
            continue
        text = (src / rel).read_text(encoding="utf-8")
        kept, blocks = strip_blocks(text, stub, rel.as_posix())
        if cut is not None:
            kept, sections = strip_sections(kept, cut, rel.as_posix())
            for s in sections:
                if s.kind == "FORMULA" and cut(s.task):
                    secret.update(line.strip() for line in s.body if len(line.strip()) >= 8)
        public.update(line.strip() for line in kept.splitlines())
        for b in blocks:
            if stub(b) is not None:
                secret.update(line.strip() for line in b.body if len(line.strip()) >= 8)
    return secret - public


def leaked_lines(root, source=None, stub=None, number=None, keep_later=False, cut=None) -> list:
    """(file, line) for every line of a cut-out solution block found in a file of the copy ``root``.

    A line counts only if it is at least 8 characters long and appears nowhere in
    the library outside the cut-out blocks (``(x,) = self.saved()`` is everywhere).
    Give ``stub`` or the copy's assignment ``number``.
    """
    root = Path(root)
    src = Path(source) if source is not None else reference_root()
    if stub is None:
        if number is None:
            raise ValueError("leaked_lines: give stub or the copy's assignment number")
        stub = _stubber(number, keep_later)
    if cut is None and number is not None:
        cut = _cutter(number, keep_later)
    secret = _secret_lines(src, stub, cut)
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        text = "\n".join(_text_lines(path))
        for line in sorted(secret):
            if line in text:
                found.append((path.relative_to(root).as_posix(), line))
    return found


def put_back(root, task_id: str, source=None) -> int:
    """Put the reference solution of one task back into the student copy ``root``; returns the blocks restored.

    Each stub ``raise NotImplementedError("task N.M…")`` of the task is replaced, in
    order, by the reference block's code (what a student who solved only that task
    would have). The tests use it; a teacher can use it to hand out one solution.
    """
    src = Path(source) if source is not None else reference_root()
    root = Path(root)
    restored = 0
    blocks = [b for b in scan(src) if b.task == task_id]
    if not blocks:
        raise ValueError(f"task {task_id} has no solution block in {src}")
    for path in sorted({b.path for b in blocks}):
        mine = [b for b in blocks if b.path == path]
        target = root / path
        lines = target.read_text(encoding="utf-8").splitlines(keepends=True)
        stubs = find_stubs(lines, task_id)
        if len(stubs) != len(mine):
            raise ValueError(
                f"{target}: {len(stubs)} stub(s) of task {task_id}, but the reference has {len(mine)} block(s)"
            )
        for (first, end, _), b in reversed(list(zip(stubs, mine))):
            lines[first:end] = [line + "\n" for line in b.body]
        target.write_text("".join(lines), encoding="utf-8")
        restored += len(mine)
    return restored

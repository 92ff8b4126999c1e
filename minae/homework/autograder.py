"""A Gradescope autograder for one assignment, and the grading it runs there.

Gradescope's contract (its autograder documentation): the zip's root holds
``setup.sh`` (run once, as root, when the image is built) and ``run_autograder``
(run for each submission); the submission is in ``/autograder/submission`` and
the results go to ``/autograder/results/results.json``. Here the root is
``$AUTOGRADER_ROOT`` when set (so that the whole path runs anywhere, in tests too).

The zip carries the reference minae (installed by ``setup.sh``; the package
registry is the only network it needs) and the built student copy, so that a
submission of only the files that hold the stubs is graded in that copy.
``setup.sh`` also installs bubblewrap: the submission runs in its sandbox. The
results file is written by the grader alone, from its verdicts, after every
child has ended: one the submission's code could have written is never kept
(``run_autograder`` removes it first and writes zero on any failure).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import tempfile
import traceback
import zipfile
from pathlib import Path

from .assignments import assignment_of
from .build import build, reference_root

__all__ = ["write_autograder", "gradescope_run", "locate_copy"]

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder's image.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v bwrap >/dev/null; then  # the sandbox the submissions run in
  apt-get update && apt-get install -y bubblewrap
fi
python3 -m pip install --no-cache-dir ./minae-reference
# the installed reference private to root, so that the fallback user (where bubblewrap cannot build its
# namespaces) can run: it refuses while another user could read the grader's package
chmod -R go-rwx "$(cd / && python3 -c 'import os, minae; print(os.path.dirname(minae.__file__))')"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for each submission. The results file is the grader's, written in every case:
# any file already there is removed first, and when the grader fails it is replaced by a zero.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
mkdir -p "$ROOT/results"
rm -f "$ROOT/results/results.json"
# the zip's reference minae (source/minae-reference) is world-readable as unpacked: the fallback user (where
# bubblewrap cannot run) is kept out of the whole root by its permissions, and the grader checks that it is
chmod go-rwx "$ROOT"
# `python3 -m` puts the working folder first on the import path: from the submission's folder, the
# submission's own minae would be imported as the grader (unsandboxed). An empty folder holds none.
cd "$(mktemp -d)"
if ! python3 -m minae.homework gradescope --assignment {number} --root "$ROOT" --copy "$ROOT/source/student-copy"; then
  printf '%s\\n' '{"score": 0, "tests": [], "output": "the grader could not run (see setup.sh)"}' \\
    > "$ROOT/results/results.json.part"
  mv -f "$ROOT/results/results.json.part" "$ROOT/results/results.json"
fi
"""

_REFERENCE = ("setup.cfg", "pyproject.toml", "README.md", "LICENSE")


def _add_tree(zf: zipfile.ZipFile, folder: Path, prefix: str) -> None:
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(p in ("__pycache__", ".git", ".pytest_cache", ".ipynb_checkpoints") for p in rel.parts):
            continue
        if path.is_file() and not path.is_symlink() and path.suffix not in (".pyc", ".pyo"):
            zf.write(path, f"{prefix}/{rel.as_posix()}")


def _add_text(zf: zipfile.ZipFile, name: str, text: str, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, text)


def write_autograder(number, out, source=None) -> Path:
    """Write the Gradescope autograder zip of assignment ``number`` to ``out``; returns its path."""
    a = assignment_of(number)
    src = Path(source).resolve() if source is not None else reference_root()
    out = Path(out).resolve()
    with tempfile.TemporaryDirectory(prefix="minae-autograder-") as tmp:
        copy = Path(tmp) / "student-copy"
        build(a.number, copy, source=src)
        shutil.rmtree(copy / "notebooks", ignore_errors=True)  # not graded; keeps the zip small
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            _add_text(zf, "setup.sh", SETUP_SH, executable=True)
            _add_text(zf, "run_autograder", RUN_AUTOGRADER.replace("{number}", str(a.number)), executable=True)
            for name in _REFERENCE:
                if (src / name).is_file():
                    zf.write(src / name, f"minae-reference/{name}")
            _add_tree(zf, src / "minae", "minae-reference/minae")
            _add_tree(zf, copy, "student-copy")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = out.with_name(out.name + ".part")
        tmp_out.write_bytes(buffer.getvalue())
        os.replace(tmp_out, out)
    return out


def locate_copy(submission: Path, copy: Path, into: Path) -> Path:
    """The folder to grade: the submitted copy, or the built ``copy`` with the submitted files laid over it.

    A whole copy (a folder with ``minae/`` at the top or one level down) is graded as it is. Otherwise
    each submitted ``.py`` file replaces the copy's file of the same path (``minae/ops.py``) or, failing
    that, the one file of the copy's package with the same name (``ops.py``).
    """
    for path in submission.rglob("*"):
        if path.is_symlink() and not path.resolve().is_relative_to(submission.resolve()):
            raise ValueError(f"{path.relative_to(submission)} is a symbolic link leaving the submission: refused")
    for candidate in [submission] + sorted(p for p in submission.iterdir() if p.is_dir() and not p.is_symlink()):
        if (candidate / "minae" / "__init__.py").is_file():
            return candidate
    shutil.copytree(copy, into)
    files = [p for p in submission.rglob("*.py") if p.is_file() and not p.is_symlink() and "__MACOSX" not in p.parts]
    if not files:
        raise FileNotFoundError("the submission has no Python files: submit your copy, or the files you wrote")
    by_name = {}
    for p in (into / "minae").rglob("*.py"):
        if "homework" not in p.relative_to(into).parts:
            by_name.setdefault(p.name, []).append(p)
    placed = 0
    for f in files:
        rel = f.relative_to(submission)
        target = into / rel
        if rel.parts[:1] == ("minae",) and target.is_file() and "homework" not in rel.parts:
            shutil.copyfile(f, target)
            placed += 1
        elif len(by_name.get(f.name, [])) == 1:
            shutil.copyfile(f, by_name[f.name][0])
            placed += 1
    if not placed:
        names = ", ".join(sorted({f.name for f in files})[:5])
        raise FileNotFoundError(f"none of the submitted files ({names}) is a file of the copy's minae package")
    return into


def _results(number, result=None, reason=None) -> dict:
    a = assignment_of(number)
    tests = []
    for t in a.tasks:
        r = result.task(t.id) if result is not None else None
        score = r.earned if r is not None else 0
        if r is not None and r.complete:
            output = f"all {r.total} tests pass"
        elif r is not None:
            output = f"{r.passed}/{r.total} tests pass; first failure: {r.failure}"
        else:
            output = reason
        tests.append(
            {"name": f"{t.id} {t.title}", "number": t.id, "score": score, "max_score": t.points, "output": output}
        )
    out = {"score": sum(t["score"] for t in tests), "tests": tests}
    if result is not None:
        out["output"] = f"seed {result.seed}; inputs drawn fresh for this run and compared with the reference minae"
    elif reason:
        out["output"] = reason
    return out


def gradescope_run(number, root, copy, timeout: float = 300, test_timeout: float = 60, no_sandbox=False) -> dict:
    """Grade ``root``/submission for assignment ``number``; write ``root``/results/results.json in every case.

    The file is written here, from the grader's verdicts, after the sandboxed code has ended; whatever was
    there before is removed first (the submission's code can neither see nor write the results folder).
    """
    from .grade import clean, grade

    root = Path(root)
    results_file = root / "results" / "results.json"
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.unlink(missing_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix="minae-gradescope-") as tmp:
            submission = root / "submission"
            if not submission.is_dir():
                raise FileNotFoundError(f"no submission folder at {submission}")
            folder = locate_copy(submission, Path(copy), Path(tmp) / "graded")
            result = grade(
                folder,
                number,
                stream=False,
                timeout=timeout,
                test_timeout=test_timeout,
                reference=True,
                no_sandbox=no_sandbox,
                private=(root,),  # the reference minae it carries, the submission, the results
            )
            data = _results(number, result)
    except Exception as e:  # the results file must exist whatever happened: a readable reason, zero points
        reason = clean(f"the submission could not be graded: {type(e).__name__}: {e}")
        data = _results(number, None, reason)
        data["output"] = reason + "\n\n" + clean(traceback.format_exc(limit=3)[-2000:])  # for the teacher
    part = results_file.with_name("results.json.part")
    part.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(part, results_file)
    return data

"""``minae-homework check``'s put-back pass: does each task's solution, alone, earn exactly that task?

For an assignment: build its student copy from the reference tree; grade it (no
test may pass against a stub); then, for each task, put that task's solution
back into a fresh copy of the copy and grade again: that task must be complete
and every other task must still have no passing test. This finds a marked piece
that another task's tests also use (marking ``Sigmoid.backward`` would break
tasks 2.2 and 2.4's tests), which the markers alone cannot show.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .assignments import assignment_of
from .build import build, put_back, reference_root

__all__ = ["put_back_problems"]


def put_back_problems(number, source=None, seed: int = 1, stream=None) -> list:
    """What the put-back pass finds wrong with assignment ``number`` (readable lines; empty when all is well)."""
    from .grade import grade

    a = assignment_of(number)
    src = Path(source).resolve() if source is not None else reference_root()
    found = []
    with tempfile.TemporaryDirectory(prefix="minae-check-") as tmp:
        built = Path(tmp) / "built"
        build(a.number, built, source=src)
        stubbed = grade(built, a.number, stream=False, seed=seed)
        for t in stubbed.tasks:
            if t.passed:
                found.append(
                    f"task {t.id}: {t.passed} of its {t.total} tests pass against the stub (they test nothing)"
                )
        for task in a.tasks:
            folder = Path(tmp) / f"task{task.id}"
            shutil.copytree(built, folder)
            put_back(folder, task.id, source=src)
            result = grade(folder, a.number, stream=False, seed=seed)
            for t in result.tasks:
                if t.id == task.id and not t.complete:
                    found.append(f"task {task.id} put back alone: {t.passed}/{t.total} of its tests pass ({t.failure})")
                elif t.id != task.id and t.passed:
                    found.append(
                        f"task {task.id} put back alone makes {t.passed} test(s) of task {t.id} pass: "
                        f"task {t.id}'s tests use task {task.id}'s code"
                    )
            if stream:
                print(f"  task {task.id}: put back alone, {result.earned}/{result.points}", file=stream)
    return found

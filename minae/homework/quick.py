"""``minae.homework.check("1.3")``: one task's tests, run in this process, for quick feedback in a notebook.

It needs no subprocess (so it works in a browser kernel), and it is not the grade:
the tests run against whatever ``minae`` this process imported, and the student's
code shares the process with the checks. ``minae-homework grade`` gives the grade.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .assignments import TASKS

__all__ = ["check"]


def check(task: str, stream=None) -> bool:
    """Run task ``task``'s tests here; print one line per test; True when all pass (feedback, not the grade)."""
    import importlib.util
    import traceback

    from .grade import _error_line, _task_functions, names_of_tests, read_manifest

    task = str(task)
    if task not in TASKS:
        raise ValueError(f"no task {task!r}: the tasks are {', '.join(TASKS)}")
    out = sys.stdout if stream is None else stream
    test_file = Path(__file__).resolve().parent / "tests" / f"assignment{TASKS[task].assignment}"
    test_file = test_file / f"test_task_{task.replace('.', '_')}.py"
    if not test_file.is_file():
        raise FileNotFoundError(f"{test_file} is missing: is this minae a copy of assignment {TASKS[task].assignment}?")
    package = str(Path(__file__).resolve().parents[1])
    functions = _task_functions(task, read_manifest(Path(package).parent))
    passed, names = 0, names_of_tests(test_file.read_text(encoding="utf-8"), str(test_file))
    spec = importlib.util.spec_from_file_location(f"minae_homework_check_{task.replace('.', '_')}", test_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in names:
        try:
            getattr(module, name)()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:
            base = str(Path(package).parent) + "/"
            frames = [
                [f.filename[len(base) :], f.lineno, f.name]
                for f in traceback.extract_tb(e.__traceback__)
                if f.filename.startswith(base + "minae/")
            ]
            error = {"type": type(e).__name__, "message": str(e)[:2000], "frames": frames}
            print(f"  ✗ {name}: {_error_line(error, functions)}", file=out)
            continue
        passed += 1
        print(f"  ✓ {name}", file=out)
    print(
        f"task {task}: {passed}/{len(names)} tests pass (a quick check in this process, not the grade: "
        "minae-homework grade . gives that)",
        file=out,
    )
    return passed == len(names)

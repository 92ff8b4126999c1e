"""Run a task's tests and hand back what the code under test gave: data, never a verdict.

The grader runs this file in a child process (``python -I``, the student's
``minae`` alone on the path, no ``conftest.py``, no pytest) and reads one JSON
line per event from a pipe: a test starts, a check recorded its values, a test
raised (the exception's type, message and frames), a test ended. The grader
also imports it to run the same tests against its own, reference ``minae``.

It imports nothing from minae at module level: in the child it must load after
the student's ``minae`` and bring the grader's own ``minae.homework.testing``.
"""

from __future__ import annotations

import ast
import base64
import importlib.util
import json
import os
import sys
import types

MAX_TEXT = 2000  # characters of an exception message kept


def test_names(path) -> list:
    """The test functions of a test file, in the file's order, read without importing it."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), str(path))
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]


def encode(x):
    """Plain JSON: arrays (anything with shape, dtype and astype) as float64 bytes in base64."""
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, dict):
        return {str(k): encode(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [encode(v) for v in x]
    if hasattr(x, "shape") and hasattr(x, "astype") and hasattr(x, "tobytes"):
        data = x.astype("<f8").tobytes()
        return {"__nd__": [int(s) for s in x.shape], "b64": base64.b64encode(data).decode("ascii")}
    return str(x)


def _frames(tb, package: str) -> list:
    """(path relative to the package's parent, line, qualified name) of each frame inside ``package``."""
    out = []
    base = os.path.dirname(package)
    while tb is not None:
        code = tb.tb_frame.f_code
        path = os.path.abspath(code.co_filename)
        if path.startswith(package + os.sep):
            name = getattr(code, "co_qualname", None)
            if name is None:  # before Python 3.11
                owner = tb.tb_frame.f_locals.get("self")
                name = f"{type(owner).__name__}.{code.co_name}" if owner is not None else code.co_name
            out.append([os.path.relpath(path, base).replace(os.sep, "/"), tb.tb_lineno, name])
        tb = tb.tb_next
    return out


def error_data(exc, package: str) -> dict:
    try:
        message = str(exc)
    except Exception:  # a student's exception whose __str__ fails
        message = "<unprintable>"
    return {"type": type(exc).__name__, "message": message[:MAX_TEXT], "frames": _frames(exc.__traceback__, package)}


def load_module(path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tests(test_file, names, emit, seed, package: str, numeric: bool = True, task=None) -> None:
    """Run ``names`` of ``test_file`` against the ``minae`` already imported; ``emit`` each event."""
    import minae
    from minae.homework import testing

    if task is not None:  # every event names the task: two tasks may have tests of the same name
        emit = _tagged(emit, task)
    current = {"test": None}
    testing.recorder = lambda record: emit({"event": "check", "test": current["test"], "record": encode(record)})
    testing.run_seed = seed
    testing.numeric_wanted = numeric
    try:
        module = load_module(test_file, f"minae_homework_test_{os.path.basename(test_file)[:-3]}")
    except BaseException as e:  # a test module that cannot load against this minae: every test fails with it
        error = dict(error_data(e, package), during="import")
        for name in names:
            emit({"event": "start", "test": name})
            emit({"event": "error", "test": name, "error": error})
            emit({"event": "end", "test": name})
        return
    try:
        for name in names:
            current["test"] = name
            emit({"event": "start", "test": name})
            try:
                minae.manual_seed(int(seed) % (2**32))
                getattr(module, name)()
            except BaseException as e:
                emit({"event": "error", "test": name, "error": error_data(e, package)})
            emit({"event": "end", "test": name})
    finally:
        testing.recorder = None
        testing.run_seed = None
        testing.numeric_wanted = True


def _tagged(emit, task):
    return lambda event: emit(dict(event, task=task))


def main(argv) -> None:
    cfg = json.loads(argv[-1])
    fd = int(cfg["fd"])

    def emit(event):
        os.write(fd, (json.dumps(event, ensure_ascii=True) + "\n").encode("ascii"))

    sys.path.insert(0, cfg["path"])
    package = os.path.join(os.path.abspath(cfg["path"]), "minae")
    emit({"event": "importing"})
    try:
        import minae
    except BaseException as e:
        emit({"event": "import_error", "error": error_data(e, package)})
        return
    emit({"event": "imported", "minae_file": str(getattr(minae, "__file__", None))})
    # the grader's own test helpers, under the name the tests import; the copy's minae.homework is never run
    homework = types.ModuleType("minae.homework")
    homework.__path__ = []
    sys.modules["minae.homework"] = homework
    testing = importlib.util.module_from_spec(
        importlib.util.spec_from_file_location("minae.homework.testing", cfg["testing"])
    )
    sys.modules["minae.homework.testing"] = testing
    homework.testing = testing
    try:
        testing.__spec__.loader.exec_module(testing)
    except BaseException as e:
        emit({"event": "import_error", "error": error_data(e, package)})
        return
    for task, test_file, names in cfg["plan"]:
        run_tests(test_file, names, emit, cfg["seed"], package, numeric=cfg["numeric"], task=task)
    emit({"event": "done"})


if __name__ == "__main__":
    main(sys.argv)

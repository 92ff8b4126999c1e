"""The grader's pytest plugin: one JSON record per test, with a one-line reason for each failure.

It imports nothing from minae at module level: the grader loads it from a copy
outside the graded package (``-p minae_homework_grader``), so that a student's
syntax error in ``minae/ops.py`` becomes a failed task, not a crashed grader.
Settings come from the environment: ``MINAE_HOMEWORK_REPORT`` (where to write
the JSON), ``MINAE_HOMEWORK_ROOT`` (the graded copy) and
``MINAE_HOMEWORK_TEST_TIMEOUT`` (seconds per test, 0 for none).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading

import pytest

_results = {}  # nodeid -> {"file", "name", "outcome", "message"}
_collect_errors = []  # {"file", "message"}


def _squeeze(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _student_frame(excinfo):
    """file:line and function of the innermost frame in the graded library (not in its tests)."""
    root = os.environ.get("MINAE_HOMEWORK_ROOT")
    if not root:
        return None
    package = os.path.join(os.path.abspath(root), "minae") + os.sep
    tests = os.path.join(package, "homework") + os.sep
    for entry in reversed(excinfo.traceback):
        path = os.path.abspath(str(entry.path))
        if path.startswith(package) and not path.startswith(tests):
            name = entry.name
            owner = entry.frame.f_locals.get("self")
            if owner is not None and name != "<module>":
                name = f"{type(owner).__name__}.{name}"
            return f"{os.path.relpath(path, root)}:{entry.lineno + 1} in {name}"
    return None


def one_line(excinfo) -> str:
    """A failure as one line a student can act on."""
    exc = excinfo.value
    name = type(exc).__name__
    message = str(exc)
    if isinstance(exc, NotImplementedError) and message.startswith("task "):
        return f"not written yet ({_squeeze(message)})"
    if isinstance(exc, AssertionError):  # minae.GradcheckError's message is one line already
        return _squeeze(message.split("\n", 1)[0].strip() or "assertion failed")
    where = _student_frame(excinfo)
    text = f"{name}: {message}" if message else name
    return _squeeze(text + (f" (at {where})" if where else ""))


def _record(item_or_report, outcome, message=None):
    nodeid = item_or_report.nodeid
    entry = _results.setdefault(
        nodeid,
        {
            "file": os.path.basename(nodeid.split("::", 1)[0]),
            "name": nodeid.split("::", 1)[-1],
            "outcome": None,
            "message": None,
        },
    )
    if entry["outcome"] == "failed":
        return  # the first failure is the one to show
    if outcome == "failed" or entry["outcome"] is None or outcome == "skipped":
        entry["outcome"], entry["message"] = outcome, message


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        message = one_line(call.excinfo) if call.excinfo is not None else _squeeze(report.longreprtext)
        _record(report, "failed", message)
    elif report.skipped:
        _record(report, "skipped", None)
    elif report.when == "call":
        _record(report, "passed", None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    seconds = float(os.environ.get("MINAE_HOMEWORK_TEST_TIMEOUT", "0") or 0)
    usable = seconds > 0 and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"the test ran longer than {seconds:g} s: an endless loop?")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _error_line(text: str) -> str:
    """The last ``E   …`` line of a collection error (the exception), with the file and line where given."""
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    message = errors[-1] if errors else (text.strip().splitlines() or ["error"])[-1]
    located = re.findall(r'File "([^"]+)", line (\d+)', text)
    root = os.environ.get("MINAE_HOMEWORK_ROOT")
    if located:
        path, line = located[-1]
        if root and os.path.abspath(path).startswith(os.path.abspath(root)):
            path = os.path.relpath(path, root)
        if os.path.basename(path) not in message:
            message += f" ({path}, line {line})"
    return _squeeze(message)


def pytest_collectreport(report):
    if report.failed:
        _collect_errors.append(
            {
                "file": os.path.basename(str(report.nodeid).split("::", 1)[0]),
                "message": "the tests could not be imported: " + _error_line(report.longreprtext),
            }
        )


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("MINAE_HOMEWORK_REPORT")
    if not path:
        return
    module = sys.modules.get("minae")
    data = {
        "tests": list(_results.values()),
        "collect_errors": _collect_errors,
        "minae_file": getattr(module, "__file__", None),
        "exitstatus": int(exitstatus),
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)

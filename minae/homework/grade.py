"""Grade a student copy (or the reference project) for one assignment: the verdict is the grader's.

How a grade is made, and why the graded code cannot write it:

- The tests and their helpers are the grader's own (``minae/homework/tests`` of
  the installed minae); nothing in the graded folder is loaded by the grading
  machinery (no pytest, no ``conftest.py``, no ``sitecustomize.py``).
- Each task's tests run in a child process (``python -I``) whose path holds only
  the copy's ``minae`` package. The child hands back data on a pipe: the values
  each check recorded, the exception a test raised. Its output is truncated, its
  time limited per test and per task by a kill from outside.
- The grader runs the same tests, with the same freshly seeded inputs, against
  its own ``minae`` (the reference, with every task solved) and compares: the
  student's values against the reference's, the student's backward against the
  reference's finite differences. When the grader itself is a student copy (a
  student's own install) there is no reference: the values the tests computed in
  the child are compared instead, which is feedback, not a grade.

A task earns its points in proportion to the tests it passes, in whole points.
"""

from __future__ import annotations

import base64
import json
import math
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import _child, testing
from .assignments import TASKS, assignment_of
from .build import MANIFEST

__all__ = ["TaskResult", "GradeResult", "grade", "read_manifest", "has_reference"]

OUTPUT_LIMIT = 64 * 1024  # bytes of a child's stdout and stderr kept (the rest is read and dropped)
DATA_LIMIT = 64 * 1024 * 1024  # bytes of data a child may hand back for one task


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
    def earned(self) -> int:
        """Whole points: the task's points times the share of its tests passed, rounded down."""
        return self.points * self.passed // self.total if self.total else 0


@dataclass
class GradeResult:
    assignment: int
    title: str
    root: Path
    tasks: list
    minae_file: str | None = None
    warnings: list = field(default_factory=list)
    output: str = ""  # the children's own output (truncated), for --verbose
    seed: int = 0
    reference: bool = True  # False: no reference minae, the copy's own checks (feedback, not a grade)

    @property
    def points(self) -> int:
        return sum(t.points for t in self.tasks)

    @property
    def earned(self) -> int:
        return sum(t.earned for t in self.tasks)

    @property
    def ok(self) -> bool:
        return all(t.complete for t in self.tasks) and not self.warnings

    def task(self, task_id: str) -> TaskResult:
        return next(t for t in self.tasks if t.id == task_id)

    def table(self) -> str:
        width = max([len(t.title) for t in self.tasks] + [4])
        how = "compared with the reference minae" if self.reference else "the copy's own checks (no reference here)"
        lines = [
            f"Assignment {self.assignment}: {self.title}",
            f"graded: {self.root}",
            f"seed {self.seed} (inputs drawn fresh for each run; --seed {self.seed} repeats this one); {how}",
            "",
            f"{'task':<6}{'what':<{width}}  {'tests':>7}  {'points':>9}",
        ]
        for t in self.tasks:
            tests = f"{t.passed}/{t.total}"
            lines.append(f"{t.id:<6}{t.title:<{width}}  {tests:>7}  {str(t.earned) + '/' + str(t.points):>9}")
            if not t.complete:
                lines.append(f"{'':<6}✗ {t.failure or 'no tests found for this task'}")
        done = sum(t.complete for t in self.tasks)
        total = f"{self.earned}/{self.points}"
        lines.append(f"{'total':<6}{'':<{width}}  {'':>7}  {total:>9}   {done} of {len(self.tasks)} tasks done")
        lines.append("points per task: its points × tests passed / tests, rounded down to a whole point")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def read_manifest(root) -> dict | None:
    """The student copy's ``.minae-homework.json`` (which assignment it is), or None for the reference."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")[:1_000_000])
    except (ValueError, OSError):
        return None


def _own_package() -> Path:
    """The grader's own minae package folder."""
    return Path(__file__).resolve().parents[1]


def has_reference() -> bool:
    """Whether the grader's own minae is the reference (not a student copy): then it grades by comparison."""
    return not (_own_package().parent / MANIFEST).is_file()


def _tests_dir(number: int) -> Path:
    return Path(__file__).resolve().parent / "tests" / f"assignment{number}"


# --------------------------------------------------------------- the reference ---
_reference_cache: dict = {}
_reference_lock = threading.Lock()


def _reference_events(task_id: str, seed: int) -> dict:
    """test name -> the reference's events for that test (same seed, same inputs), computed here, cached."""
    key = (task_id, seed)
    with _reference_lock:
        if key not in _reference_cache:
            test_file = Path(__file__).resolve().parents[2] / TASKS[task_id].test_file
            names = _child.test_names(test_file)
            events = []
            _child.run_tests(str(test_file), names, lambda e: events.append(_roundtrip(e)), seed, str(_own_package()))
            _reference_cache[key] = _by_test(events)
        return _reference_cache[key]


def _roundtrip(event):
    return _decode(json.loads(json.dumps(_child.encode(event))))


def _decode(x):
    """Decode the child's JSON: arrays back from float64 bytes; sizes checked, nothing executed."""
    from ..backend import np

    if isinstance(x, list):
        return [_decode(v) for v in x]
    if isinstance(x, dict):
        if set(x) == {"__nd__", "b64"}:
            shape = tuple(int(s) for s in x["__nd__"])
            raw = base64.b64decode(x["b64"])
            if len(raw) != 8 * math.prod(shape):
                raise ValueError("an array of the wrong size")
            return np.frombuffer(raw, dtype="<f8").reshape(shape)
        return {k: _decode(v) for k, v in x.items()}
    return x


def _safe_decode(event):
    try:
        return _decode(event)
    except (ValueError, TypeError, KeyError):  # malformed data from the child: a check that cannot pass
        return dict(event, record={"kind": "unreadable"}) if event.get("event") == "check" else event


def _by_test(events) -> dict:
    tests = {}
    for e in events:
        if e.get("event") in ("start", "check", "error", "end") and isinstance(e.get("test"), str):
            key = (e.get("task"), e["test"]) if "task" in e else e["test"]
            entry = tests.setdefault(key, {"checks": [], "error": None, "ended": False})
            if e["event"] == "check" and isinstance(e.get("record"), dict):
                entry["checks"].append(e["record"])
            elif e["event"] == "error" and entry["error"] is None:
                entry["error"] = e.get("error") if isinstance(e.get("error"), dict) else {"type": "?", "message": ""}
            elif e["event"] == "end":
                entry["ended"] = True
    return tests


# ------------------------------------------------------------------- the child ---
class _Child:
    """One child process running some of a task's tests; its events, its output, and how it ended."""

    def __init__(self, cfg: dict, cwd: str):
        read, write = os.pipe()
        cfg = dict(cfg, fd=write)
        code = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "MINAE_HOMEWORK"))}
        env.update(MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", code, _child.__file__, json.dumps(cfg)],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(write,),
            start_new_session=True,  # its own process group: a kill reaches what it started too
        )
        os.close(write)
        self.data = os.fdopen(read, "rb", buffering=0)
        self.output, self.dropped, self.buffer, self.size = bytearray(), 0, b"", 0
        self.events = []

    def run(self, test_timeout: float, task_timeout: float, task_started: dict):
        """Read events until the child ends; kill it when a test or a task overruns. Returns why it was killed.

        ``task_started`` (task -> when its first test started, shared by the children of one grading) keeps a
        task's limit across a restart.
        """
        sel = selectors.DefaultSelector()
        sel.register(self.data, selectors.EVENT_READ, "data")
        sel.register(self.proc.stdout, selectors.EVENT_READ, "out")
        started, open_streams, killed, task = time.monotonic(), 2, None, None
        while open_streams:
            now = time.monotonic()
            test_limit = started + test_timeout if test_timeout > 0 else math.inf
            task_limit = task_started[task] + task_timeout if task is not None else started + task_timeout
            limit = min(task_limit, test_limit)
            if now >= limit:
                killed = "test" if test_limit <= task_limit else "task"
                break
            for key, _ in sel.select(timeout=min(1.0, limit - now)):
                chunk = os.read(key.fileobj.fileno(), 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                elif key.data == "out":
                    keep = max(0, OUTPUT_LIMIT - len(self.output))
                    self.output += chunk[:keep]
                    self.dropped += len(chunk) - min(keep, len(chunk))
                else:
                    self.size += len(chunk)
                    if self.size > DATA_LIMIT:
                        killed = "data"
                        open_streams = 0
                        break
                    self.buffer += chunk
                    *lines, self.buffer = self.buffer.split(b"\n")
                    for line in lines:
                        try:
                            event = json.loads(line)
                        except ValueError:
                            continue
                        if not isinstance(event, dict):
                            continue
                        self.events.append(event)
                        if event.get("event") in ("imported", "start", "end"):
                            started = time.monotonic()
                        if event.get("event") == "start" and event.get("task") in task_started:
                            task = event["task"]
                            task_started[task] = task_started[task] or started
        sel.close()
        if killed:
            self._kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._kill()
            self.proc.wait()
        self.data.close()
        self.proc.stdout.close()
        return killed

    def _kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def text(self) -> str:
        text = self.output.decode("utf-8", errors="replace")
        if self.dropped:
            text += f"\n… {self.dropped} more bytes of output dropped"
        return text


def _run_all(plan, path, seed, numeric, test_timeout, task_timeout, cwd):
    """Run every task's tests in one child (a new one after a kill, for the rest).

    ``plan`` is [(task, test file, test names)]. Returns (events by (task, test), notes by (task, test): why a
    test was stopped or not run, the children's output, what the import gave: minae_file or error).
    """
    files = {task: test_file for task, test_file, _ in plan}
    remaining = [(task, name) for task, _, names in plan for name in names]
    task_started = {task: None for task, _, _ in plan}
    events, notes, outputs, imported = [], {}, [], {}
    while remaining:
        todo = [[task, files[task], [n for k, n in remaining if k == task]] for task in files]
        cfg = {"path": path, "testing": testing.__file__, "seed": seed, "numeric": numeric}
        child = _Child(dict(cfg, plan=[entry for entry in todo if entry[2]]), cwd)
        killed = child.run(test_timeout, task_timeout, task_started)
        child.events = [_safe_decode(e) for e in child.events]
        outputs.append(child.text())
        for e in child.events:
            if e.get("event") == "imported":
                imported.setdefault("minae_file", e.get("minae_file"))
            if e.get("event") == "import_error" and "error" not in imported:
                imported["error"] = e.get("error") if isinstance(e.get("error"), dict) else {}
        if "error" in imported:
            break
        if not any(e.get("event") == "imported" for e in child.events):
            if events:  # a child started after a kill did not come up: the rest is not run
                for key in remaining:
                    notes[key] = f"not run: the tests' process did not start again (status {child.proc.returncode})"
                break
            why = f"the process exited with status {child.proc.returncode} while importing minae"
            if killed:
                why = f"importing minae took longer than {task_timeout:g} s"
            imported["error"] = {"type": "", "message": why, "frames": []}
            break
        events.extend(child.events)
        tests = _by_test(child.events)
        current = next((key for key in remaining if key in tests and not tests[key]["ended"]), None)
        done = {key for key in remaining if key in tests and tests[key]["ended"]}
        if current is not None:
            done.add(current)
            if killed == "test":
                notes[current] = f"the test ran longer than {test_timeout:g} s (stopped): an endless loop?"
            elif killed == "task":
                notes[current] = f"the task's tests ran longer than {task_timeout:g} s (stopped)"
            elif killed == "data":
                notes[current] = f"the test handed back more than {DATA_LIMIT // 2**20} MB of data (stopped)"
            else:
                notes[current] = f"the test ended the process (exit status {child.proc.returncode})"
            if killed == "task":
                for key in remaining:
                    if key[0] == current[0] and key not in done:
                        notes[key] = f"not run: the task's tests ran longer than {task_timeout:g} s"
                        done.add(key)
        if not done:
            for key in remaining:
                notes[key] = f"the tests ended the process (exit status {child.proc.returncode})"
            break
        remaining = [key for key in remaining if key not in done]
    return _by_test(events), notes, "\n".join(outputs), imported


# ------------------------------------------------------------------ the verdict ---
def _error_line(error: dict, functions) -> str:
    kind, message = error.get("type", ""), str(error.get("message", ""))
    if kind == "NotImplementedError" and message.startswith("task "):
        return f"not written yet ({_squeeze(message)})"
    if kind == "AssertionError":
        return _squeeze(message.split("\n", 1)[0].strip() or "assertion failed")
    text = f"{kind}: {message}" if message else kind
    where = _where(error.get("frames") or [], functions)
    if error.get("during") == "import":
        text = "the tests could not be imported: " + text
    return _squeeze(text + (f" (at {where})" if where else ""))


def _where(frames, functions):
    """The innermost frame in the task's own (stubbed) functions; else the innermost in the library."""
    frames = [f for f in frames if isinstance(f, list) and len(f) == 3 and not str(f[0]).startswith("minae/homework/")]
    for path, line, name in reversed(frames):
        plain = str(name).replace(".<locals>", "")
        if any(plain == fn or plain.endswith("." + fn) for fn in functions):
            return f"{path}:{line} in {name}"
    if frames:
        path, line, name = frames[-1]
        return f"{path}:{line} in {name}"
    return None


def _squeeze(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _judge_check(ref, got) -> str | None:
    kind = ref.get("kind")
    if got.get("kind") != kind:
        return "the test took another path than with the reference code"
    if kind == "close":
        expected = got.get("expected") if ref.get("own") else ref.get("expected")
        return testing.judge_close(got.get("actual"), expected, ref["what"], ref["rtol"], ref["atol"])
    if kind == "equal":
        return testing.judge_equal(got.get("actual"), ref.get("expected"), ref["message"])
    if kind == "within":
        value = got.get("actual")
        value = float(value) if isinstance(value, (int, float)) else None
        return testing.judge_within(value, ref["expected"], ref["tolerance"], ref["what"])
    if kind == "gradcheck":
        analytic = got.get("analytic") or []
        if len(analytic) != len(ref["inputs"]):
            return f"gradcheck for {ref['name']}: {len(analytic)} gradients for {len(ref['inputs'])} inputs"
        return testing.judge_gradcheck(ref["name"], ref["inputs"], analytic, ref["numeric"], ref["atol"], ref["rtol"])
    return f"internal error: an unknown check {kind!r}"


def judge_test(ref, got, functions) -> str | None:
    """None when the student's test run ``got`` passes against the reference's ``ref`` (None: its own checks)."""
    checks = got["checks"]
    reference = ref["checks"] if ref is not None else checks
    for i, r in enumerate(reference):
        if i >= len(checks):
            break
        try:
            reason = _judge_check(r, checks[i] if ref is not None else r)
        except (KeyError, TypeError, ValueError) as e:
            reason = f"the test's data could not be read ({type(e).__name__})"
        if reason:
            return reason
    if got["error"] is not None:
        return _error_line(got["error"], functions)
    if len(checks) < len(reference):
        return f"the test stopped before its check {len(checks) + 1} of {len(reference)}"
    if not got["ended"]:
        return "the test did not finish"
    return None


def _task_functions(task_id: str, manifest) -> list:
    """The names of the functions a task's stubs sit in (for the failure line's frame)."""
    if manifest:
        for t in manifest.get("tasks", []):
            if isinstance(t, dict) and t.get("id") == task_id:
                return [str(w.get("name")) for w in t.get("where", []) if isinstance(w, dict)]
    try:
        from .build import scan
        from .markers import enclosing_name

        src = _own_package().parent
        names = []
        for b in scan(src):
            if b.task == task_id:
                names.append(enclosing_name((src / b.path).read_text(encoding="utf-8"), b.begin))
        return names
    except (OSError, ValueError):
        return []


def _link_package(root: Path, into: Path) -> str:
    """A folder whose only entry is the copy's minae package (a link, or a copy where links are not allowed)."""
    into.mkdir()
    try:
        os.symlink(root / "minae", into / "minae", target_is_directory=True)
    except OSError:
        shutil.copytree(root / "minae", into / "minae", ignore=shutil.ignore_patterns("__pycache__", "homework"))
    return str(into)


def grade(
    root=".",
    assignment=None,
    stream=None,
    timeout: float = 300,
    test_timeout: float = 60,
    verbose: bool = False,
    seed: int | None = None,
    reference: bool | None = None,
    fresh_tests: bool = True,
) -> GradeResult:
    """Grade the project folder ``root`` for ``assignment``; print (to ``stream``) and return the result.

    ``assignment`` defaults to the one the student copy was built for. ``stream``
    receives the table (standard output by default; pass False for silence).
    ``timeout`` bounds each task (all its tests), ``test_timeout`` each test; both
    are enforced by killing the child process. ``seed`` repeats an earlier run's
    inputs (default: a fresh one). ``reference`` (default: when the grader's
    minae is not itself a student copy) compares with the reference minae.
    The tests are always the grader's own (``fresh_tests`` is kept for old callers).
    """
    del fresh_tests
    root = Path(root).resolve()
    if not (root / "minae").is_dir():
        raise FileNotFoundError(f"{root} has no minae package: give the folder of a student copy (or of the project)")
    manifest = read_manifest(root)
    if assignment is None:
        if manifest is None or not isinstance(manifest.get("assignment"), int):
            raise ValueError(
                f"{root} is not a student copy (no {MANIFEST}): say which assignment to grade, e.g. --assignment 1"
            )
        assignment = manifest["assignment"]
    a = assignment_of(assignment)
    seed = secrets.randbelow(10**6) if seed is None else int(seed)
    reference = has_reference() if reference is None else reference
    result = GradeResult(a.number, a.title, root, [TaskResult(t.id, t.title, t.points) for t in a.tasks], seed=seed)
    result.reference = reference
    outputs = []
    with tempfile.TemporaryDirectory(prefix="minae-grade-") as tmp:
        path = _link_package(root, Path(tmp) / "path")
        work = Path(tmp) / "work"
        work.mkdir()
        plan = []
        for t in result.tasks:
            test_file = _tests_dir(a.number) / f"test_task_{t.id.replace('.', '_')}.py"
            plan.append((t.id, str(test_file), _child.test_names(test_file)))
        got, notes, output, imported = _run_all(plan, path, seed, not reference, test_timeout, timeout, str(work))
        outputs.append(output)
        if imported.get("minae_file"):
            result.minae_file = _student_path(imported["minae_file"], path, root)
        for t, (_, _, names) in zip(result.tasks, plan):
            t.total = len(names)
            if "error" in imported:
                err = imported["error"]
                line = _error_line(err, []) if err.get("type") else err.get("message", "")
                t.failure = "minae could not be imported: " + line
                continue
            ref = _reference_events(t.id, seed) if reference else {}
            functions = _task_functions(t.id, manifest)
            for name in names:
                key = (t.id, name)
                if key in got:
                    reason = judge_test(ref.get(name) if reference else None, got[key], functions)
                    if key in notes and (reason is None or not got[key]["ended"]):
                        reason = notes[key]  # killed from outside: the kill is the reason
                else:
                    reason = notes.get(key) or "the test did not run"
                if reason is None:
                    t.passed += 1
                elif t.failure is None:
                    t.failure = f"{name}: {reason}"
            if reference:
                for name in names:
                    r = ref.get(name)
                    if r is None or judge_test(None, r, []) is not None:
                        result.warnings.append(f"the reference fails {t.id} {name} with seed {seed}: fix the test")
    result.output = "\n".join(outputs)
    out = sys.stdout if stream is None else stream
    if out:
        if verbose:
            print(result.output, file=out)
        print(result.table(), file=out)
    return result


def _student_path(minae_file: str, path: str, root: Path) -> str:
    """The student's minae/__init__.py as a path in the copy (the child saw it through the link folder)."""
    try:
        return str(root / Path(os.path.abspath(minae_file)).relative_to(path))
    except ValueError:
        return minae_file

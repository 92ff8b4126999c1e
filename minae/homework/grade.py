"""Grade a student copy (or the reference project) for one assignment: the verdict is the grader's.

How a grade is made, and why the graded code cannot write it:

- The student's code runs in an OS sandbox (``sandbox.py``: bubblewrap, or a
  separate unprivileged user) that sees its staged copy and the Python runtime,
  not the grader's files, and cannot outlive its task.
- The tests run here, in the grader (``runner.py``): their control flow, their
  NumPy expectations and the checks' records. They reach the student's code
  through a pipe (``protocol.py``): "call this function on these arrays",
  answered with arrays or handles. The child never sees an expected value.
- The grader runs the same tests, with the same freshly seeded inputs, against
  its own ``minae`` (the reference, with every task solved) and compares: the
  student's values against the reference's, the student's backward against the
  reference's finite differences. When the grader itself is a student copy (a
  student's own install, which has no solution markers) there is no reference:
  the test's own expectations judge, which is feedback, not a grade.
- The grader's test files, helpers and reference package are read and hashed
  before any child starts and checked after the last one ended.

A task earns its points in proportion to the tests it passes, in whole points.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import secrets
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import _child, runner, sandbox, testing
from .assignments import TASKS, assignment_of
from .build import MANIFEST
from .protocol import Channel, ProtocolError, RemoteError, exit_status

__all__ = ["TaskResult", "GradeResult", "grade", "read_manifest", "has_reference", "clean"]

FAILURE_LIMIT = 600  # characters of a task's failure line: the test, the idea it checks (≤ 240), what failed
OUTPUT_LIMIT = 64 * 1024  # bytes of a child's standard error kept (the rest is read and dropped)
# control characters (terminal escapes), bidi overrides, and lone surrogates (a str that cannot be encoded:
# printing it to a UTF-8 terminal, or writing it to results.json, raises UnicodeEncodeError)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def clean(text: str) -> str:
    """``text`` without control characters, bidi overrides or lone surrogates: safe to print and to encode."""
    return _CONTROL.sub("?", str(text))


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
    output: str = ""  # the children's own output (truncated, control characters replaced), for --verbose
    seed: int = 0
    reference: bool = True  # False: no reference minae, the copy's own checks (feedback, not a grade)
    sandbox: str = "none"  # where the student's code ran: bwrap, user or none

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
            f"graded: {clean(self.root)} (sandbox: {self.sandbox})",
            f"seed {self.seed} (inputs drawn fresh for each run; --seed {self.seed} repeats this one); {how}",
            "",
            f"{'task':<6}{'what':<{width}}  {'tests':>7}  {'points':>9}",
        ]
        for t in self.tasks:
            tests = f"{t.passed}/{t.total}"
            lines.append(f"{t.id:<6}{t.title:<{width}}  {tests:>7}  {str(t.earned) + '/' + str(t.points):>9}")
            if not t.complete:
                lines.append(f"{'':<6}✗ {clean(t.failure or 'no tests found for this task')}")
        done = sum(t.complete for t in self.tasks)
        total = f"{self.earned}/{self.points}"
        lines.append(f"{'total':<6}{'':<{width}}  {'':>7}  {total:>9}   {done} of {len(self.tasks)} tasks done")
        lines.append("points per task: its points × tests passed / tests, rounded down to a whole point")
        lines.extend(f"warning: {clean(w)}" for w in self.warnings)
        return "\n".join(lines)


def read_manifest(root) -> dict | None:
    """A student copy's ``.minae-homework.json`` (feedback only: it never chooses what is graded)."""
    path = Path(root) / MANIFEST
    if not path.is_file() or path.is_symlink():
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.loads(f.read(1_000_000))
        return data if isinstance(data, dict) else None
    except (ValueError, OSError):
        return None


@functools.lru_cache(maxsize=None)
def _own_package() -> Path:
    """The grader's own minae package folder."""
    return Path(__file__).resolve().parents[1]


_has_reference: list = []


def has_reference() -> bool:
    """Whether the grader's own minae is the reference: its library code holds the solution blocks.

    Decided from the package's own code, not from a file beside it (a file anyone could drop into the
    project folder must not switch the grading mode); a built copy has no markers left.
    """
    if not _has_reference:
        from .markers import has_marker

        found = False
        for path in sorted(_own_package().rglob("*.py")):
            if "homework" in path.relative_to(_own_package()).parts:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if "SOLUTION" in text and any(has_marker(line) for line in text.splitlines()):
                found = True
                break
        _has_reference.append(found)
    return _has_reference[0]


def _tests_dir(number: int) -> Path:
    return Path(__file__).resolve().parent / "tests" / f"assignment{number}"


_AST_LOCK = threading.Lock()  # CPython 3.11's ast.parse keeps a recursion count that two threads corrupt


def names_of_tests(source: str, path: str = "<test>") -> list:
    """The test functions of a test file's text, in the file's order, read without running it."""
    import ast

    with _AST_LOCK:  # grade-all grades in threads ("SystemError: AST constructor recursion depth mismatch")
        tree = ast.parse(source, path)
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]


@functools.lru_cache(maxsize=8)
def _grader_only_names(helpers: str) -> frozenset:
    """The helpers (top-level names of ``_helpers.py``'s text) that hold or call grader-only code.

    A grader-only section is a stand-in for another task's code (sum_to by its definition, for task 1.1's
    tests of broadcasting): it is that task's solution, so it must not reach a child that runs that task's
    tests. A name is held when its definition overlaps a section, and called when its body names a held one.
    """
    import ast

    from .markers import find_sections

    spans = [(sec.begin + 1, sec.end + 1) for sec in find_sections(helpers, "_helpers.py") if sec.kind == "GRADER ONLY"]
    with _AST_LOCK:
        tree = ast.parse(helpers, "_helpers.py")
    defs = {}
    for node in tree.body:
        names = (
            [node.name] if hasattr(node, "name") else [t.id for t in getattr(node, "targets", []) if hasattr(t, "id")]
        )
        for name in names:
            defs[name] = node
    first = {
        name: min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        for name, node in defs.items()
    }
    held = {name for name, node in defs.items() if any(a <= node.end_lineno and first[name] <= b for a, b in spans)}
    while True:
        more = {
            name for name, node in defs.items() if name not in held
            and any(isinstance(n, ast.Name) and n.id in held for n in ast.walk(node))
        }  # fmt: skip
        if not more:
            return frozenset(held)
        held |= more


def helpers_for(sources: dict, test_path: str) -> str:
    """The helpers' text a child that runs the tests of ``test_path`` gets: the grader's, with its grader-only
    sections, only when those tests (or the shared test helpers) name a helper that needs them; else the copy's
    form (each section cut or replaced by its ``in a copy`` line), so that a task's tests never run next to a
    stand-in for that task's own code."""
    from .markers import strip_sections

    text = sources["_helpers.py"]
    used = sources.get(test_path, "") + sources.get("testing.py", "")
    if any(re.search(rf"\b{re.escape(name)}\b", used) for name in _grader_only_names(text)):
        return text
    return strip_sections(text, lambda task: False, "_helpers.py")[0]


# ---------------------------------------------------------- the grader's files ---
def _grader_files(number: int) -> dict:
    """The files the verdict rests on, read once: the runner's sources and this assignment's tests."""
    here = Path(__file__).resolve().parent
    files = {name: here / name for name in runner.SOURCE_FILES}
    for path in sorted(_tests_dir(number).glob("test_task_*.py")):
        files[str(path)] = path
    return {key: path.read_text(encoding="utf-8") for key, path in files.items()}


def _fingerprint() -> str:
    """A fingerprint of every file of the grader's package (the reference, the tests, this machinery).

    Each file's size, inode, modification and change times (``st_ctime``, which every write, rename or
    ``utime`` sets to the clock and only root could set back): any file written, replaced, added or
    removed changes it, at the cost of a ``stat`` per file rather than reading them all.
    """
    h = hashlib.sha256()
    files = [p for p in _own_package().rglob("*") if "__pycache__" not in p.parts]
    pth = [p for p in Path(sys.prefix).glob("lib/python*/site-packages/*.pth")]  # where the grader's Python looks
    for path in sorted(files) + sorted(pth):
        try:
            st = path.lstat()
        except OSError:
            continue
        if not path.is_dir():
            h.update(f"{path}\0{st.st_size}\0{st.st_ino}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0".encode())
    return h.hexdigest()


# --------------------------------------------------------------- the reference ---
_reference_cache: dict = {}
_reference_lock = threading.Lock()


def _run_test(world, module, testing, name, seed, numeric, ref=None) -> dict:
    """Run one test of a loaded test module: its checks' records, the error it raised, whether it ended.

    With ``ref`` (the reference's run of the test) each check is judged as it is recorded and only its
    verdict is kept: the student's arrays live no longer than their check (each answer is bounded, but a
    copy's worth of them is not).
    """
    entry = {"checks": [], "error": None, "ended": False}
    if ref is None:
        testing.recorder = entry["checks"].append
    else:
        testing.recorder = lambda record: entry["checks"].append(_judged(ref["checks"], len(entry["checks"]), record))
    testing.run_seed = seed
    testing.numeric_wanted = numeric
    task_idea = getattr(module, "IDEA", None)  # the test file's idea: what every check of it is about
    try:
        world.seed(seed)
        if isinstance(task_idea, str) and task_idea:
            with testing.idea(task_idea):
                getattr(module, name)()
        else:
            getattr(module, name)()
    except ProtocolError:
        raise
    except Exception as e:  # the test failed: what the student's code raised, or the test's own error
        entry["error"] = dict(runner.error_data(e))
        said = getattr(e, "minae_idea", None)  # set by the grader's own test code (testing.idea), never the child
        if isinstance(said, str):
            entry["error"]["idea"] = said
    entry["ended"] = True
    return entry


def _reference_events(task_id: str, seed: int, sources: dict | None = None) -> dict:
    """test name -> the reference's run of that test (same seed, same inputs), computed here, cached."""
    a = TASKS[task_id].assignment
    sources = sources or _grader_files(a)
    path = str(_tests_dir(a) / f"test_task_{task_id.replace('.', '_')}.py")
    key = (task_id, seed, hashlib.sha256(sources[path].encode()).hexdigest())
    with _reference_lock:
        if key not in _reference_cache:
            import minae

            world = runner.LocalWorld()
            module, testing = runner.load(world, sources, path, f"minae_reference_{task_id.replace('.', '_')}")
            previous = minae.get_default_dtype()
            try:
                _reference_cache[key] = {
                    name: _run_test(world, module, testing, name, seed, True)
                    for name in names_of_tests(sources[path], path)
                }
            finally:
                minae.set_default_dtype(previous)
        return _reference_cache[key]


# ------------------------------------------------------------------- the child ---
class _Session:
    """The sandboxed child of one grading: started on demand, restarted after a kill, its output bounded."""

    def __init__(self, which, staged, scratch, limits, sources, totals=None):
        self.which, self.staged, self.scratch, self.limits, self.sources = which, staged, scratch, limits, sources
        self.totals = totals
        self.child = self.channel = None
        self.helpers = self.sources["_helpers.py"]  # what the next child gets (helpers_for: per task)
        self.child_helpers = None  # what the running child got
        self.output, self.dropped = bytearray(), 0
        self.threads = []

    def _drain(self, stream):
        while True:
            chunk = stream.read(65536)
            if not chunk:
                return
            keep = max(0, OUTPUT_LIMIT - len(self.output))
            self.output += chunk[:keep]
            self.dropped += len(chunk) - min(keep, len(chunk))

    def open(self, deadline: float) -> Channel:
        if self.channel is not None and not self.channel.broken and self.child_helpers == self.helpers:
            return self.channel
        self.close()
        self.child = sandbox.start(
            self.which, self.staged, self.scratch, self.limits, self.sources["_child.py"], self.totals
        )
        thread = threading.Thread(target=self._drain, args=(self.child.proc.stderr,), daemon=True)
        thread.start()
        self.threads.append(thread)
        self.channel = Channel(self.child.proc, self.child.kill)
        self.channel.deadline, self.channel.why = deadline, "the task's time limit"
        hello = {"path": self.child.path, "root": self.child.root, "limits": self.limits,
                 "helpers": self.helpers}  # fmt: skip
        self.child_helpers = self.helpers
        data = json.dumps(hello).encode()
        self.channel._write(len(data).to_bytes(4, "little") + (0).to_bytes(4, "little") + data)
        answer = self.channel.answer()  # given before the student's code runs: the child's own word
        if answer != "ready" and not (isinstance(answer, str) and answer.startswith("unconfined: ")):
            self.channel.fail("the child did not start")
        if answer != "ready" and self.which != "none" and _child.seccomp_program(os.uname().machine) is not None:
            self.channel.fail(f"the sandbox's seccomp filter could not be installed ({answer[12:]})")
        return self.channel

    def stopped(self) -> str | None:
        """Why the child was stopped for one of the task's totals (memory, processes, scratch), or None."""
        return self.child.stopped() if self.child is not None else None

    def close(self):
        if self.channel is not None:
            self.channel.close()
        if self.child is not None:
            self.child.end()
            for stream in (self.child.proc.stdout,):
                stream.close()
        self.child = self.channel = None

    def text(self) -> str:
        for thread in self.threads:
            thread.join(timeout=2)
        text = clean(self.output.decode("utf-8", errors="replace").replace("\r", ""))
        if self.dropped:
            text += f"\n… {self.dropped} more bytes of output dropped"
        return text


def _grade_tasks(result, session, sources, plan, seed, numeric, test_timeout, task_timeout, refs=None):
    """Run every test of ``plan`` ([(task, test file, names)]) in the child; returns test key -> run or reason.

    ``refs`` (task -> test name -> the reference's run): each check is judged as it is recorded.
    """
    runs = {}
    try:
        if plan:
            session.helpers = helpers_for(sources, plan[0][1])
        channel = session.open(time.monotonic() + task_timeout)
        imported = channel.request("import", "minae", False)
        del imported
    except RemoteError as e:
        return {"import error": e.data}
    except ProtocolError as e:
        status = session.child.proc.returncode if session.child is not None else None
        if session.stopped():
            why = f"importing minae was stopped: {session.stopped()}"
        elif str(e).startswith("ended"):
            code, _, cause = exit_status(status).partition(", ")
            why = f"the process exited with {code} while importing minae" + (f" ({cause})" if cause else "")
        else:
            why = f"importing minae {e}"
        return {"import error": {"type": "", "message": why}}
    for task, path, names in plan:
        task_deadline = time.monotonic() + task_timeout
        module = testing = None
        session.helpers = helpers_for(sources, path)  # a child with other helpers is replaced by a fresh one
        for name in names:
            now = time.monotonic()
            if now >= task_deadline:
                runs[(task, name)] = f"not run: the task's tests ran longer than {task_timeout:g} s"
                continue
            test_deadline = min(now + test_timeout, task_deadline) if test_timeout > 0 else task_deadline
            try:
                channel = session.open(test_deadline)
                channel.deadline = test_deadline
                channel.new_test()
                if test_timeout > 0 and now + test_timeout <= task_deadline:
                    channel.why = f"{test_timeout:g} s"
                else:
                    channel.why = f"the task's {task_timeout:g} s"
                if module is None or testing.WORLD.channel is not channel:
                    world = runner.RemoteWorld(channel)
                    try:
                        module, testing = runner.load(world, sources, path, f"minae_test_{task.replace('.', '_')}")
                    except Exception as e:  # the test module could not load against this minae
                        module = None
                        runs[(task, name)] = {"checks": [], "error": dict(runner.error_data(e), during="import"),
                                              "ended": True}  # fmt: skip
                        continue
                ref = (refs or {}).get(task, {}).get(name)
                runs[(task, name)] = _run_test(testing.WORLD, module, testing, name, seed, numeric, ref)
            except ProtocolError as e:
                why = str(e)
                if session.stopped():
                    runs[(task, name)] = f"the test was stopped: {session.stopped()}"
                elif why.startswith("ran longer"):
                    runs[(task, name)] = f"the test {why}: an endless loop?"
                elif why.startswith("ended"):
                    runs[(task, name)] = f"the test {why}"
                else:
                    runs[(task, name)] = f"the test was stopped: {why}"
                session.close()
                module = None
    return runs


# ------------------------------------------------------------------ the verdict ---
def _with_idea(idea, reason: str) -> str:
    """The failure line: the idea the test checks first (unless the reason already says it), then what failed."""
    if not isinstance(idea, str) or not idea.strip() or idea in reason:
        return reason
    return f"{_squeeze(idea, 240)}: {reason}"


def _error_line(error: dict, functions) -> str:
    kind, message = error.get("type", ""), str(error.get("message", ""))
    idea = error.get("idea")
    if kind == "NotImplementedError" and message.startswith("task "):
        return f"not written yet ({_squeeze(message)})"
    if kind == "AssertionError":
        return _with_idea(idea, _squeeze(message.split("\n", 1)[0].strip() or "assertion failed"))
    where = _where(error.get("frames") or [], functions)
    at = error.get("at")
    if kind == "SyntaxError" and isinstance(at, list) and len(at) == 2:
        where = f"{at[0]}:{at[1]}"  # the student's file and line, not the import that reached it
    if error.get("during") == "import":
        text = f"{kind}: {message}" if message else kind
        return _squeeze("the tests could not be imported: " + text + (f" (at {where})" if where else ""))
    if isinstance(idea, str) and idea.strip():
        # a crash is told as the idea the test checks, then where the student's code raised and what: the
        # exception's own message (often NumPy's about shapes) is the last and least of it
        detail = _squeeze(message, 160) if message else ""
        if error.get("local"):  # raised here, by the grader's test code, on what the student's code returned
            text = f"the test could not use what your code returned ({kind}" + (f": {detail})" if detail else ")")
        else:
            text = f"your code raised {kind}" + (f" at {where}" if where else "") + (f": {detail}" if detail else "")
        return _with_idea(idea, _squeeze(text))
    text = f"{kind}: {message}" if message else kind
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
    text = " ".join(clean(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _judged(reference: list, i: int, record: dict) -> dict:
    """The verdict of a student's ``i``-th check against the reference's, in place of its data."""
    if i >= len(reference):
        return {"kind": "judged", "reason": None}  # checks past the reference's are not judged (judge_test)
    try:
        reason = _judge_check(reference[i], record)
    except (KeyError, TypeError, ValueError) as e:
        reason = f"the test's data could not be read ({type(e).__name__})"
    return {"kind": "judged", "reason": reason, "idea": record.get("idea")}


def _said(got: dict, ref: dict, key: str) -> str:
    """A check's words (its message or what it names): the student's run's, which the grader's test code chose
    from the student's values (how many calls, which case), else the reference's. The verdict is the reference's
    either way: the words only say what went wrong."""
    text = got.get(key)
    return text if isinstance(text, str) else ref[key]


def _judge_check(ref, got) -> str | None:
    if got.get("kind") == "judged":  # judged when it was recorded, against this same reference check
        return got["reason"]
    kind = ref.get("kind")
    if got.get("kind") != kind:
        return "the test took another path than with the reference code"
    if kind == "close":
        expected = got.get("expected") if ref.get("own") else ref.get("expected")
        return testing.judge_close(got.get("actual"), expected, _said(got, ref, "what"), ref["rtol"], ref["atol"])
    if kind == "equal":
        return testing.judge_equal(got.get("actual"), ref.get("expected"), _said(got, ref, "message"))
    if kind == "within":
        value = got.get("actual")
        value = float(value) if isinstance(value, (int, float)) else None
        return testing.judge_within(value, ref["expected"], ref["tolerance"], _said(got, ref, "what"))
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
            return _with_idea(checks[i].get("idea") or r.get("idea"), _squeeze(reason))
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
    return _reference_functions().get(task_id, [])


_functions_cache: dict = {}


def _reference_functions() -> dict:
    """task -> the names of the functions its solution blocks sit in, in the grader's own code (scanned once)."""
    if not _functions_cache:
        try:
            from .build import scan
            from .markers import enclosing_name

            src = _own_package().parent
            for b in scan(src):
                text = (src / b.path).read_text(encoding="utf-8")
                _functions_cache.setdefault(b.task, []).append(enclosing_name(text, b.begin))
        except (OSError, ValueError):
            pass
        _functions_cache.setdefault("", [])
    return _functions_cache


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
    no_sandbox: bool = False,
    limits: dict | None = None,
    private=(),
) -> GradeResult:
    """Grade the project folder ``root`` for ``assignment``; print (to ``stream``) and return the result.

    ``assignment`` is the grader's choice; only a student checking their own copy
    (no reference here) may leave it to the copy's manifest. ``stream`` receives
    the table (standard output by default; pass False for silence). ``timeout``
    bounds each task (all its tests), ``test_timeout`` each test: absolute
    deadlines, enforced by killing the child. ``seed`` repeats an earlier run's
    inputs (default: a fresh one). ``reference`` (default: when the grader's minae
    holds the solutions) compares with the reference minae. Grading with a
    reference needs a sandbox (``sandbox.mode()``) unless ``no_sandbox``.
    ``limits`` overrides the child's resource limits (``sandbox.LIMITS``, per process) and
    the task's totals (``sandbox.TOTALS``: ``memory`` and ``processes`` of all its processes).
    ``private``: more folders the student's code must not reach (the autograder's root); with a
    reference, the graded folder itself is one (the sandbox sees a staged copy of it).
    """
    del fresh_tests
    root = Path(root).resolve()
    if not (root / "minae").is_dir():
        raise FileNotFoundError(f"{root} has no minae package: give the folder of a student copy (or of the project)")
    reference = has_reference() if reference is None else reference
    manifest = read_manifest(root)
    if assignment is None:
        if reference or manifest is None or not isinstance(manifest.get("assignment"), int):
            raise ValueError("say which assignment to grade, e.g. --assignment 1 (a copy's own files never choose it)")
        assignment = manifest["assignment"]
    a = assignment_of(assignment)
    # the fallback user is kept out by Unix permissions alone: what it must not read is probed as that user
    private = (*map(str, private), str(root)) if reference else tuple(map(str, private))
    which = sandbox.mode(private)
    if which == "none" and reference and not no_sandbox:
        raise ValueError(
            f"no sandbox can run here ({sandbox.why_not(private)}): grading someone else's copy needs one. "
            "Install bubblewrap, or say --no-sandbox to run the student's code as yourself"
        )
    seed = secrets.randbelow(10**6) if seed is None else int(seed)
    result = GradeResult(a.number, a.title, root, [TaskResult(t.id, t.title, t.points) for t in a.tasks], seed=seed)
    result.reference, result.sandbox = reference, which
    sources = _grader_files(a.number)  # read before any child starts: what runs is what was hashed
    before = _fingerprint()
    plan = []
    for t in result.tasks:
        path = str(_tests_dir(a.number) / f"test_task_{t.id.replace('.', '_')}.py")
        plan.append((t.id, path, names_of_tests(sources[path], path) if path in sources else []))
    if reference:
        refs = {t.id: _reference_events(t.id, seed, sources) for t in result.tasks}
    cpu = int(timeout * len(a.tasks) + 30)
    child_limits = dict(sandbox.LIMITS, cpu=cpu, **(limits or {}))
    totals = {k: child_limits.pop(k) for k in list(child_limits) if k in sandbox.TOTALS}
    with tempfile.TemporaryDirectory(prefix="minae-grade-") as tmp:
        staged = sandbox.stage(root, Path(tmp) / "copy")
        scratch = Path(tmp) / "scratch"
        scratch.mkdir()
        session = _Session(which, staged, scratch, child_limits, sources, totals)
        try:
            runs = _grade_tasks(
                result, session, sources, plan, seed, not reference, test_timeout, timeout, refs if reference else None
            )
        finally:
            session.close()
        result.output = session.text()
    if before != _fingerprint():
        raise RuntimeError("the grader's own files changed while the student's code ran: no grade is given")
    if "import error" not in runs:
        result.minae_file = str(root / "minae" / "__init__.py")
    for t, (_, _, names) in zip(result.tasks, plan):
        t.total = len(names)
        if "import error" in runs:
            err = runs["import error"]
            line = _error_line(err, []) if err.get("type") else _squeeze(err.get("message", ""))
            t.failure = "minae could not be imported: " + line
            continue
        ref = refs[t.id] if reference else {}
        functions = _task_functions(t.id, None if reference else manifest)
        for name in names:
            got = runs.get((t.id, name), "the test did not run")
            reason = got if isinstance(got, str) else judge_test(ref.get(name) if reference else None, got, functions)
            if reason is None:
                t.passed += 1
            elif t.failure is None:  # one readable line, whatever text of the child's the reason quotes
                t.failure = _squeeze(f"{name}: {reason}", FAILURE_LIMIT)
        if reference:
            for name in names:
                r = ref.get(name)
                if r is None or judge_test(None, r, []) is not None:
                    result.warnings.append(f"the reference fails {t.id} {name} with seed {seed}: fix the test")
    out = sys.stdout if stream is None else stream
    if out:
        if verbose:
            print(result.output, file=out)
        print(result.table(), file=out)
    return result

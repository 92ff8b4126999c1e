"""A determined student against the grader (issue 19): each attack on an unsolved copy of assignment 1.

The honest unsolved copy scores 0, so every attack must score 0 too, in each of the three setups that run
a student's code (``grade``, ``grade-all``, the Gradescope autograder run locally with AUTOGRADER_ROOT),
finish within its limits, leave no process behind, and leave the teacher's files, the results and the
other submissions as they were. The attacks know the teacher's paths (as a student who read the course's
setup would): only the sandbox keeps them out.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from minae.homework import build, grade, sandbox
from minae.homework.cli import main
from minae.homework.gradebook import _unzip, grade_all

pytestmark = pytest.mark.skipif(
    sandbox._bwrap_ok() is not None and os.environ.get("MINAE_SANDBOX") != "user", reason="no sandbox here"
)

PACKAGE = Path(grade.__code__.co_filename).resolve().parents[1]  # the grader's minae: the reference
TEACHER_ROOT = PACKAGE.parent
SITE = Path(next(p for p in sys.path if p.endswith("site-packages")))
LIMITS = dict(test_timeout=2, timeout=6, seed=7)
PROBE = "zz_attack_probe"  # the name of every file an attack tries to plant

# ------------------------------------------------------------------ attacks ---
# Each is appended to the copy's minae/__init__.py (after `import os, sys, json`), with {TARGETS}: the paths
# an attack writes (teacher files, results, a classmate), and {RESULTS}: the results files it forges.
_PRELUDE = """
import os as _os, sys as _sys, json as _json, time as _time, signal as _signal, threading as _threading


def _old_pipe():
    # the data pipe of a grader that names it in the child's arguments (commit a55d887 did), else None
    try:
        return int(_json.loads(_sys.argv[-1])["fd"])
    except Exception:
        return None


def _write_all(fds, data):
    for _fd in fds:
        try:
            _os.write(_fd, data)
        except OSError:
            pass
"""
ATTACKS = {
    "reference swap by path": """
_t = {TEACHER!r}
if _os.path.isfile(_t + "/minae/__init__.py"):
    import importlib.util as _u
    for _k in [k for k in _sys.modules if k == "minae" or k.startswith("minae.")]:
        del _sys.modules[_k]
    _spec = _u.spec_from_file_location("minae", _t + "/minae/__init__.py", submodule_search_locations=[_t + "/minae"])
    _m = _u.module_from_spec(_spec)
    _sys.modules["minae"] = _m
    _spec.loader.exec_module(_m)
    globals().update(vars(_m))
""",
    "results forged, then the parent killed": """
for _p in {RESULTS}:
    try:
        _os.makedirs(_os.path.dirname(_p), exist_ok=True)
        with open(_p, "w") as _f:
            _f.write(_json.dumps({{"score": 100, "tests": []}}))
    except OSError:
        pass
for _pid in (_os.getppid(), 1):
    try:
        _os.kill(_pid, _signal.SIGKILL)
    except OSError:
        pass
""",
    "a daemon that outlives the grading": """
if _os.fork() == 0:
    _os.setsid()
    if _os.fork() == 0:
        _time.sleep(4)
        for _p in {RESULTS}:
            try:
                with open(_p, "w") as _f:
                    _f.write(_json.dumps({{"score": 100, "tests": []}}))
            except OSError:
                pass
        _os.execv("/bin/sleep", ["sleep", "37.{PID}"])
    _os._exit(0)
""",
    "lasting damage to the teacher's files": """
for _p in {TARGETS}:
    try:
        _os.makedirs(_os.path.dirname(_p), exist_ok=True)
        with open(_p, "w") as _f:
            _f.write("# planted\\n")
    except OSError:
        pass
""",
    "checks patched in the child": """
import numpy as _np
_np.isclose = lambda *a, **k: _np.ones(_np.broadcast(*a[:2]).shape, bool)
_np.allclose = lambda *a, **k: True


def _forge(event, args):
    # when the test helpers appear in this process, make every check record the expected value as the
    # actual one (what a check that runs next to the student's code lets it do)
    if event != "open":
        return
    for _name, _mod in list(_sys.modules.items()):
        if _name.endswith("testing") and hasattr(_mod, "_emit") and not hasattr(_mod, "_forged"):
            _mod._forged = True
            _emit = _mod._emit
            _mod._emit = lambda record, _o=_emit: _o(
                dict(record, actual=record["expected"]) if record.get("kind") in ("close", "equal") else record
            )


_sys.addaudithook(_forge)
""",
    "a keep-alive loop": """
def _keep_alive():
    while True:
        if _old_pipe() is not None:
            _write_all([_old_pipe()], b'{{"event": "imported"}}\\n')
        print("still alive", file=_sys.stderr, flush=True)
        _time.sleep(0.01)


_threading.Thread(target=_keep_alive, daemon=True).start()
while True:  # an import that never ends, with signs of life all along
    _time.sleep(0.1)
""",
    "a 60 MB line into every pipe": """
def exp(x):
    _blob = b"x" * 60_000_000
    _write_all([_old_pipe()] if _old_pipe() is not None else range(3, 12), _blob)
    _write_all([1, 2], _blob)
    while True:
        _time.sleep(1)
""",
    "a 200,000-deep message": """
def exp(x):
    _deep = b"[" * 200_000 + b"]" * 200_000
    if _old_pipe() is not None:
        _write_all([_old_pipe()], _deep + b"\\n")
    else:
        _body = b'{{"ok": ' + _deep + b"}}"
        _write_all(range(3, 12), len(_body).to_bytes(4, "little") + bytes(4) + _body)
    while True:
        _time.sleep(1)
""",
    "Infinity in a value": """
def exp(x):
    if _old_pipe() is not None:
        _line = b'{{"event": "check", "task": "1.1", "test": "test_exp_backward", "record": '
        _line += b'{{"kind": "within", "actual": Infinity, "expected": 0, "tolerance": 1, "what": "x"}}}}\\n'
        _write_all([_old_pipe()], _line)
    else:
        _body = b'{{"ok": {{"__nd__": ["<f8", [Infinity]]}}}}'
        _write_all(range(3, 12), len(_body).to_bytes(4, "little") + bytes(4) + _body)
    while True:
        _time.sleep(1)
""",
    "fifty setsid processes": """
for _i in range(50):
    try:
        if _os.fork() == 0:
            _os.setsid()
            _os.execv("/bin/sleep", ["sleep", "41.{PID}"])
    except OSError:
        break
""",
    "3 GiB of memory": """
def exp(x):
    _block = bytearray(3 * 2**30)
    return _block
""",
    "terminal escapes in an exception": """
def exp(x):
    raise ValueError("\\x1b[2J\\x1b[31mpwned\\x1b]0;title\\x07\\u202eevil")
""",
}
# the sleeps a surviving process would be in, their fractions this run's own (another run of these tests on
# the same machine, a reviewer's, has sleepers of its own for a few seconds)
SURVIVORS = (f"37.{os.getpid()}", f"41.{os.getpid()}")


def _attacked_copy(base: Path, name: str, targets: list, results: list) -> Path:
    folder = base / name.replace(" ", "-").replace(",", "")
    shutil.copytree(base / "unsolved", folder)
    code = ATTACKS[name].format(
        TEACHER=str(TEACHER_ROOT), TARGETS=repr(targets), RESULTS=repr(results), PID=os.getpid()
    )
    init = folder / "minae" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + _PRELUDE + code, encoding="utf-8")
    return folder


def _targets(classmate: Path) -> list:
    return [
        str(PACKAGE / "homework" / "tests" / "assignment1" / f"{PROBE}.py"),
        str(PACKAGE / "homework" / "tests" / "assignment1" / "__pycache__" / f"{PROBE}.pyc"),
        str(SITE / f"{PROBE}.pth"),
        str(TEACHER_ROOT / f"{PROBE}.json"),
        str(classmate / "minae" / f"{PROBE}.py"),
    ]


def _survivors() -> list:
    found = []
    for entry in os.listdir("/proc"):
        try:
            args = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args[:1] == [b"sleep"] and len(args) > 1 and args[1].decode() in SURVIVORS:
            found.append(int(entry))
    return found


def _no_damage(targets):
    planted = [p for p in targets if os.path.exists(p)]
    for p in planted:  # never leave a planted file behind, even when the test fails
        os.unlink(p)
    assert not planted, f"the attack wrote {planted}"
    assert not _survivors(), "a process of the attack outlived the grading"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    base = tmp_path_factory.mktemp("attacks")
    build(1, base / "unsolved")
    shutil.copytree(base / "unsolved", base / "classmate")
    return base


# ------------------------------------------------------------------- grade ---
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_an_attack_scores_zero_in_grade(base, attack, tmp_path):
    classmate = base / "classmate"
    targets = _targets(classmate)
    shutil.copytree(base / "unsolved", tmp_path / "unsolved")
    folder = _attacked_copy(tmp_path, attack, targets, [str(tmp_path / "results.json")])
    started = time.monotonic()
    result = grade(folder, 1, stream=False, **LIMITS)
    took = time.monotonic() - started
    time.sleep(0.2 if "daemon" not in attack else 4.5)  # a daemon would write now
    assert result.earned == 0, result.table()
    assert took < 40, f"grading took {took:.0f} s"
    assert not (tmp_path / "results.json").exists()
    _no_damage(targets)
    if attack == "a keep-alive loop":
        assert "importing minae ran longer than" in result.task("1.1").failure, result.task("1.1").failure
    if attack in ("a 60 MB line into every pipe", "a 200,000-deep message", "Infinity in a value"):
        assert "the test was stopped: the child sent" in result.task("1.1").failure, result.task("1.1").failure
    if attack == "3 GiB of memory":
        assert "MemoryError" in result.task("1.1").failure, result.task("1.1").failure
    if attack == "terminal escapes in an exception":
        assert "pwned" in result.table() and "\x1b" not in result.table() and "\u202e" not in result.table()


def test_a_symlink_to_the_teachers_file_is_refused(base, tmp_path):
    folder = tmp_path / "linked"
    shutil.copytree(base / "unsolved", folder)
    for name in ("ops.py", "autograd.py"):
        (folder / "minae" / name).unlink()
        (folder / "minae" / name).symlink_to(PACKAGE / name)
    with pytest.raises(ValueError, match="symbolic link leaving the submission"):
        grade(folder, 1, stream=False, **LIMITS)


def test_the_copys_manifest_never_chooses_the_assignment(base, tmp_path, capsys):
    folder = tmp_path / "claims"
    build(2, folder)
    manifest = json.loads((folder / ".minae-homework.json").read_text())
    (folder / ".minae-homework.json").write_text(json.dumps(dict(manifest, assignment=1)))
    assert main(["grade", str(folder)]) == 2
    assert "say which assignment to grade" in capsys.readouterr().err


def test_a_file_beside_the_reference_does_not_change_the_grading_mode():
    from minae.homework import grade as grade_module

    module = sys.modules[grade_module.__module__]
    planted = TEACHER_ROOT / ".minae-homework.json"
    assert not planted.exists()
    planted.write_text('{"assignment": 1}')
    try:
        module._has_reference.clear()
        assert module.has_reference()
    finally:
        planted.unlink()


def test_a_syntax_error_names_the_students_file_and_line(base, tmp_path):
    folder = tmp_path / "syntax"
    shutil.copytree(base / "unsolved", folder)
    ops = folder / "minae" / "ops.py"
    lines = ops.read_text(encoding="utf-8").splitlines()
    lines.insert(40, "def oops(:")
    ops.write_text("\n".join(lines) + "\n", encoding="utf-8")
    failure = grade(folder, 1, stream=False, **LIMITS).task("1.1").failure
    assert "SyntaxError" in failure and "(at minae/ops.py:41)" in failure, failure


def test_no_sandbox_refuses_unless_told(base, monkeypatch):
    monkeypatch.setattr(sandbox, "mode", lambda *a: "none")
    with pytest.raises(ValueError, match="--no-sandbox"):
        grade(base / "unsolved", 1, stream=False, **LIMITS)
    assert grade(base / "unsolved", 1, stream=False, no_sandbox=True, **LIMITS).earned == 0


@pytest.mark.parametrize("count", [6000, pytest.param(100_000, marks=pytest.mark.slow)])
def test_a_zip_of_many_empty_files_is_refused_fast(tmp_path, count):
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(count):
            zf.writestr(f"f{i}", b"")
    started = time.monotonic()
    with pytest.raises(ValueError, match="entries"):
        _unzip(path, tmp_path / "out")
    assert time.monotonic() - started < 10
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------- grade-all ---
@pytest.mark.slow
def test_every_attack_scores_zero_in_grade_all(base, tmp_path, capsys):
    gradebook = tmp_path / "grades.csv"
    classmate = tmp_path / "classmate"
    shutil.copytree(base / "classmate", classmate)
    before = {p: p.read_bytes() for p in classmate.rglob("*") if p.is_file()}
    targets = _targets(classmate)
    shutil.copytree(base / "unsolved", tmp_path / "unsolved")
    folders = [_attacked_copy(tmp_path, name, targets, [str(gradebook)]) for name in ATTACKS]
    rows = grade_all([*folders, classmate], 1, gradebook, jobs=2, **LIMITS)
    time.sleep(4.5)  # the daemon would rewrite the gradebook now
    assert [int(r["total"]) for r in rows] == [0] * (len(ATTACKS) + 1)
    with open(gradebook, newline="", encoding="utf-8") as f:
        assert [int(r["total"]) for r in csv.DictReader(f)] == [0] * (len(ATTACKS) + 1)
    assert before == {p: p.read_bytes() for p in classmate.rglob("*") if p.is_file()}
    _no_damage(targets)
    out = capsys.readouterr().out
    assert f"{len(ATTACKS) + 1} graded, 0 could not be graded" in out
    assert "\x1b" not in out


def test_grade_all_counts_what_it_could_not_grade_and_says_when_failures_tie(base, tmp_path, capsys):
    broken = tmp_path / "not-a-copy"
    broken.mkdir()
    bad_zip = tmp_path / "bad.zip"
    bad_zip.write_bytes(b"not a zip")
    first = tmp_path / "first"
    shutil.copytree(base / "unsolved", first)
    second = tmp_path / "second"
    shutil.copytree(base / "unsolved", second)
    ops = second / "minae" / "ops.py"
    ops.write_text(ops.read_text(encoding="utf-8") + "\ndef exp(x):\n    raise ValueError('another mistake')\n")
    init = second / "minae" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + "\nfrom .ops import exp\n")
    grade_all([first, second, broken, bad_zip], 1, tmp_path / "g.csv", jobs=1, **LIMITS)
    out = capsys.readouterr().out
    assert "4 submissions, 2 graded, 2 could not be graded" in out
    assert f"{first}: 0/100" in out and f"{broken}: not graded" in out
    assert "2 first failures tie (1× each)" in out and "another mistake" in out


# ------------------------------------------------------------- autograder ---
@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    out = tmp_path_factory.mktemp("autograder") / "autograder.zip"
    assert main(["autograder", "1", "--out", str(out)]) == 0
    return out


def _run_autograder(zip_path: Path, root: Path, folder: Path) -> dict:
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    shutil.copytree(folder, root / "submission", symlinks=True)
    script = root / "source" / "run_autograder"
    script.chmod(0o755)
    text = script.read_text(encoding="utf-8")  # the teacher's limits, small here so that a loop costs seconds
    script.write_text(text.replace(' --copy "', ' --test-timeout 2 --timeout 6 --copy "', 1), encoding="utf-8")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", AUTOGRADER_ROOT=str(root))
    subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=300)
    return json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))


@pytest.mark.slow
@pytest.mark.parametrize("attack", [*ATTACKS, "reference swap by symlink"])
def test_an_attack_scores_zero_in_the_autograder(base, autograder_zip, attack, tmp_path):
    root = tmp_path / "autograder"
    results = root / "results" / "results.json"
    classmate = tmp_path / "classmate"
    shutil.copytree(base / "classmate", classmate)
    targets = _targets(classmate)
    shutil.copytree(base / "unsolved", tmp_path / "unsolved")
    if attack == "reference swap by symlink":
        folder = tmp_path / "linked"
        shutil.copytree(base / "unsolved", folder)
        for name in ("ops.py", "autograd.py"):
            (folder / "minae" / name).unlink()
            (folder / "minae" / name).symlink_to(PACKAGE / name)
    else:
        folder = _attacked_copy(tmp_path, attack, targets, [str(results)])
    data = _run_autograder(autograder_zip, root, folder)
    time.sleep(0.2 if "daemon" not in attack else 4.5)
    assert data["score"] == 0, data
    assert json.loads(results.read_text(encoding="utf-8")) == data  # nothing rewrote it afterwards
    _no_damage(targets)


# ---------------------------------------------------------- the fallback user ---
FALLBACK_ATTACKS = [
    "reference swap by path",
    "results forged, then the parent killed",
    "a daemon that outlives the grading",
    "lasting damage to the teacher's files",
    "fifty setsid processes",
    "files left where every user may write",
]
ATTACKS["files left where every user may write"] = """
for _p in ("/tmp/{PROBE}-shared", "/var/tmp/{PROBE}-shared", "/dev/shm/{PROBE}-shared"):
    try:
        with open(_p, "w") as _f:
            _f.write("for the next copy graded")
        _os.chmod(_p, 0o666)
    except OSError:
        pass
""".replace("{PROBE}", PROBE)
SHARED_LEFTOVERS = [f"{top}/{PROBE}-shared" for top in ("/tmp", "/var/tmp", "/dev/shm")]


def _no_task_left():
    mounts = Path("/proc/self/mounts").read_text(encoding="utf-8").splitlines()
    ours = {f"uid={uid}" for uid in sandbox.ISSUED}  # another run's tasks (a reviewer's, on this machine) aside
    left = [m for m in mounts if m.startswith("minae-scratch ") and ours & set(m.split()[3].split(","))]
    assert not left, f"a task's scratch is still mounted: {left}"
    fresh = [pid for pid, (_, uids, _) in sandbox._processes().items() if set(uids) & sandbox.ISSUED]
    assert not fresh, f"processes of a task's uid are left: {fresh}"


def test_the_fallback_refuses_where_the_teachers_files_are_readable(base, monkeypatch):
    monkeypatch.setenv("MINAE_SANDBOX", "user")
    if os.geteuid() != 0 or not PACKAGE.stat().st_mode & 0o004:
        pytest.skip("needs root and a world-readable checkout")
    sandbox._user_runtime.cache_clear()
    try:
        with pytest.raises(sandbox.SandboxUnavailable, match="could read or write .*chmod o-rwx"):
            grade(base / "unsolved", 1, stream=False, **LIMITS)
    finally:
        sandbox._user_runtime.cache_clear()


def test_the_fallback_grades_a_solved_copy_in_full(fallback, tmp_path):
    result = grade(TEACHER_ROOT, 1, stream=False, **dict(LIMITS, timeout=60, test_timeout=30))
    assert result.sandbox == "user" and result.earned == result.points, result.table()
    _no_task_left()


@pytest.mark.parametrize("attack", FALLBACK_ATTACKS)
def test_an_attack_scores_zero_in_the_fallback(base, fallback, attack, tmp_path):
    classmate = base / "classmate"
    targets = _targets(classmate)
    shutil.copytree(base / "unsolved", tmp_path / "unsolved")
    folder = _attacked_copy(tmp_path, attack, targets, [str(tmp_path / "results.json")])
    result = grade(folder, 1, stream=False, **LIMITS)
    time.sleep(0.2 if "daemon" not in attack else 4.5)  # a daemon would write now
    assert result.sandbox == "user" and result.earned == 0, result.table()
    assert not (tmp_path / "results.json").exists()
    left = [p for p in SHARED_LEFTOVERS if os.path.exists(p)]
    for p in left:
        os.unlink(p)
    assert not left, f"the task's files outlived it: {left}"
    _no_damage(targets)
    _no_task_left()


_FILL_HOME = """
import os, sys, time
for where in (os.environ["HOME"], "/tmp", "/dev/shm"):
    for i in range(12):  # 12 files of 8 MB in each place (each under RLIMIT_FSIZE): 288 MB in all
        try:
            with open(os.path.join(where, f"zz_fill_{os.getuid()}_{i}"), "wb") as f:
                f.write(b"x" * (8 << 20))
            sys.stdout.write(where + "\\n")
        except OSError:
            break
        sys.stdout.flush()
time.sleep(30)
"""


def test_the_fallbacks_files_are_bounded_and_removed(base, fallback, tmp_path):
    # the fallback's scratch was a folder of the host: RLIMIT_FSIZE bounds a file, not how many; and files
    # written where every user may write (/tmp, /dev/shm) would outlive the task, for the next copy to read.
    # The scratch is a tmpfs of SCRATCH bytes where the grader may mount one (else the watchdog measures
    # it), and the task's files in the shared folders count against the same cap and are removed after it
    staged = sandbox.stage(base / "unsolved", tmp_path / "copy")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    child = sandbox.start("user", staged, scratch, dict(sandbox.LIMITS), _FILL_HOME)
    try:
        child.proc.wait(timeout=20)  # the watchdog stops it; else it sleeps on, and the wait fails
        out = child.proc.stdout.read().decode().split()
    finally:
        child.end()
    in_home = out.count(str(scratch))
    assert in_home * 8 <= sandbox.SCRATCH >> 20, f"{in_home * 8} MB written into the scratch"
    assert "MB of files (its limit)" in (child.stopped() or ""), (child.stopped(), out)
    left = [p for top in ("/tmp", "/dev/shm") for p in Path(top).glob("zz_fill_*")]
    assert not left and not scratch.exists(), left
    _no_task_left()


# ---------------------------------------------------- the reviewer's attacks ---
_KERNEL_RIGHTS = """
import json, os, resource, sys, time
out = {"writable": [], "forked": 0}
for path in ("/proc/sys/kernel/core_pattern", "/proc/sys/kernel/hostname"):
    try:  # opened, never written: the open alone is the kernel's permission check
        os.close(os.open(path, os.O_WRONLY))
        out["writable"].append(path)
    except OSError:
        pass
resource.setrlimit(resource.RLIMIT_NPROC, (16, 16))
kids = []
for _ in range(40):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(1)
        os._exit(0)
    kids.append(pid)
out["forked"] = len(kids)
for pid in kids:
    os.waitpid(pid, 0)
sys.stdout.write(json.dumps(out))
"""


def test_the_sandboxed_uid_is_unprivileged_for_the_kernel(base, tmp_path):
    # bwrap's uid 65534 in a user namespace that maps it to root is root for every check that looks at the
    # uid alone: global sysctls (kernel.core_pattern: a command the host runs as root) were writable, and
    # RLIMIT_NPROC did not hold (root is exempt): a fork bomb ran unbounded
    which = sandbox.mode()
    staged = sandbox.stage(base / "unsolved", tmp_path / "copy")
    (tmp_path / "scratch").mkdir()
    child = sandbox.start(which, staged, tmp_path / "scratch", {}, _KERNEL_RIGHTS)
    try:
        out, err = child.proc.communicate(timeout=60)
    finally:
        child.end()
    found = json.loads(out or b"null")
    assert found is not None, err.decode(errors="replace")[-2000:]
    assert found["writable"] == [], f"the sandboxed code can write {found['writable']}"
    assert found["forked"] < 16, f"RLIMIT_NPROC 16 let the sandboxed code start {found['forked']} processes"


def test_a_package_linked_to_the_teachers_is_refused(base, tmp_path):
    # the copy's minae folder itself a link to the reference package (os.walk follows the folder it is
    # given): 100/100 with every stub untouched; and in grade-all, a submission whose only copy is a linked
    # folder (submission/x -> the teacher's project)
    folder = tmp_path / "linked-package"
    folder.mkdir()
    (folder / "minae").symlink_to(PACKAGE)
    with pytest.raises(ValueError, match="symbolic link leaving the submission"):
        grade(folder, 1, stream=False, **LIMITS)
    nested = tmp_path / "linked-project"
    nested.mkdir()
    (nested / "copy").symlink_to(TEACHER_ROOT)
    rows = grade_all([nested], 1, tmp_path / "g.csv", jobs=1, stream=False, **LIMITS)
    assert int(rows[0]["total"]) == 0 and "holds no copy of minae" in rows[0]["reason"], rows


_HUGE_SHAPES = """
import numpy as _np
from .tensor import Tensor as _Tensor


class _Claims:  # says it is a Tensor of 4000 x 4000 values, and holds none
    shape = (4000, 4000)
    requires_grad = True
    dtype = None


_Claims.__name__ = "Tensor"


def exp(x):
    return _Claims()


_Tensor.numpy = lambda self: _np.zeros((0, 20_000_000))  # 0 bytes sent; a sum over axis 0 is 160 MB
"""


def test_sizes_the_child_claims_do_not_size_the_graders_arrays(base, tmp_path, peak_bytes):
    # gradcheck drew its weights with the shape the student's output reported (4000 x 4000: 128 MB, then
    # copied twice to send them), and an empty array of shape (0, 20 000 000) came back in 0 bytes for the
    # grader's own NumPy to reduce to 160 MB: a shape just under the machine's memory exhausts the grader
    earned, peak = _graded_with_peak(base, tmp_path, "huge-shapes", _HUGE_SHAPES, ("1.1", "1.2"), peak_bytes)
    assert earned == 0
    assert peak < 48 * 2**20, f"grading the copy made the grader allocate {peak / 2**20:.0f} MB"


def _graded_with_peak(base, tmp_path, name, attack, tasks, peak_bytes):
    """An unsolved assignment-1 copy with ``attack`` appended to its minae/__init__.py, graded: (points, the
    grader's peak bytes). The reference's runs of ``tasks`` are made first: they are not the student's."""
    grade_module = sys.modules[grade.__module__]
    for task in tasks:
        grade_module._reference_events(task, LIMITS["seed"])
    folder = tmp_path / name
    shutil.copytree(base / "unsolved", folder)
    init = folder / "minae" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + attack, encoding="utf-8")
    results = []
    peak = peak_bytes(lambda: results.append(grade(folder, 1, stream=False, **LIMITS)))
    assert results[0].earned == 0, results[0].table()
    return results[0].earned, peak


_BIG_ANSWERS = """
import numpy as _np
from . import backend as _backend

_backend.to_numpy = lambda x: _np.ones(500_000)  # every value the grader asks for: 4 MB


def grad(outputs, inputs, grad_outputs=None, **kwargs):  # a gradient for every input, so that checks record
    return [tensor(_np.zeros(1)) for _ in inputs]
"""


def test_the_grader_keeps_no_answer_past_its_check(base, tmp_path, peak_bytes):
    # each answer is bounded (MAX_RAW), but the grader kept every check's arrays of every test until the
    # whole copy was graded: ~60 checks of 4 MB here, ~60 of 64 MB (4 GB) with MAX_RAW's, times the copies
    # grade-all grades at once
    tasks = ("1.1", "1.2", "1.3", "1.4", "1.5")
    earned, peak = _graded_with_peak(base, tmp_path, "big-answers", _BIG_ANSWERS, tasks, peak_bytes)
    assert earned == 0
    assert peak < 48 * 2**20, f"grading the copy made the grader hold {peak / 2**20:.0f} MB"


_ANSWERS_NOT_SAMPLES = """
import numpy as _np
from .models import vae as _vae


class _Answers:  # no samples: whatever NumPy the test does on "z.numpy()" is answered with what it checks
    shape, dtype, requires_grad = (20000, 3), "float32", False

    def numpy(self):
        return self

    def astype(self, dtype):
        return self

    def mean(self, axis=None):
        return [1.0, -2.0, 0.5]

    def std(self, axis=None):
        return [1.0, 2.0, 0.5]


_Answers.__name__ = "Tensor"
_vae.VAE.reparameterise = lambda self, mu, logvar: _Answers() if self.training else mu
"""


def test_values_a_test_computes_on_are_data(tmp_path):
    # `z.numpy()` was forwarded like any method: it could return a handle, and the test's own NumPy
    # (z.mean(axis=0), z.std(axis=0)) then ran in the graded code, which answered the statistics the test
    # checks with no sample drawn: 11 of task 4.1's points with the stub untouched
    folder = tmp_path / "answers"
    build(4, folder)
    init = folder / "minae" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + _ANSWERS_NOT_SAMPLES, encoding="utf-8")
    result = grade(folder, 4, stream=False, **LIMITS)
    assert result.task("4.1").passed == 0, result.table()


_FILL_SCRATCH = """
import errno, json, os, sys
written = 0
for i in range(24):  # 24 files of 8 MB (each under RLIMIT_FSIZE): 192 MB of the machine's memory in tmpfs
    try:
        with open(f"/tmp/fill{i}", "wb") as f:
            f.write(b"x" * (8 << 20))
        written += 8 << 20
    except OSError:
        break
sys.stdout.write(json.dumps({"written": written}))
"""


def test_the_sandboxs_scratch_is_bounded(base, tmp_path):
    # /tmp in the sandbox is a tmpfs (memory): RLIMIT_FSIZE bounds one file and RLIMIT_AS one process, but
    # not how many files, so a child could hold half the machine's memory in files (a tmpfs's default size)
    staged = sandbox.stage(base / "unsolved", tmp_path / "copy")
    (tmp_path / "scratch").mkdir()
    child = sandbox.start(sandbox.mode(), staged, tmp_path / "scratch", dict(sandbox.LIMITS), _FILL_SCRATCH)
    try:
        out, err = child.proc.communicate(timeout=60)
    finally:
        child.end()
    found = json.loads(out or b"null")
    assert found is not None, err.decode(errors="replace")[-2000:]
    assert found["written"] <= 64 << 20, f"the sandboxed code wrote {found['written'] >> 20} MB into /tmp"


def test_the_graders_project_is_hidden_where_a_bind_would_show_it(base, tmp_path, monkeypatch):
    # the sandbox shows the interpreter's prefix (and /usr) whole, hiding only site-packages: a teacher's
    # project under one of them (/usr/src/course, a conda prefix) was readable by the student's code
    runtime = dict(sandbox._runtime(), prefix=str(TEACHER_ROOT.parent))  # the project inside a bound prefix
    monkeypatch.setattr(sandbox, "_runtime", lambda: runtime)
    staged = sandbox.stage(base / "unsolved", tmp_path / "copy")
    (tmp_path / "scratch").mkdir()
    code = f"import os, sys; sys.stdout.write(str(os.path.exists({str(PACKAGE / 'ops.py')!r})))"
    child = sandbox.start("bwrap", staged, tmp_path / "scratch", {}, code)
    try:
        out, err = child.proc.communicate(timeout=60)
    finally:
        child.end()
    assert out == b"False", (out, err.decode(errors="replace")[-2000:])


def test_the_autograders_output_carries_no_control_characters(tmp_path):
    # a submission refused for a file whose name the student chose: the reason was cleaned, but the
    # traceback appended for the teacher repeated the name raw (terminal escapes, bidi overrides)
    from minae.homework.autograder import gradescope_run

    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "submission" / "\x1b]0;pwned\x07\u202eyp.sbo.py").symlink_to(PACKAGE / "ops.py")
    data = gradescope_run(1, root, tmp_path / "no-copy")
    text = (root / "results" / "results.json").read_text(encoding="utf-8")
    assert data["score"] == 0 and "pwned" in data["output"], data
    assert "\x1b" not in data["output"] and "\u202e" not in data["output"], data["output"]
    assert "\\u001b" not in text and "\\u202e" not in text and "\u202e" not in text


def test_no_pythons_installed_packages_are_visible(base, tmp_path):
    # only the grading interpreter's site-packages were hidden: another Python's under /usr (where a
    # reference installed for the system's python3 lives) stayed readable in the sandbox
    staged = sandbox.stage(base / "unsolved", tmp_path / "copy")
    (tmp_path / "scratch").mkdir()
    code = (
        "import glob, os, sys\n"
        "found = [d for p in ('/usr/lib*/python*/*-packages', '/usr/local/lib*/python*/*-packages')\n"
        "         for d in glob.glob(p) if os.listdir(d)]\n"
        "sys.stdout.write(repr(found))\n"
    )
    child = sandbox.start(sandbox.mode(), staged, tmp_path / "scratch", {}, code)
    try:
        out, err = child.proc.communicate(timeout=60)
    finally:
        child.end()
    assert out == b"[]", (out, err.decode(errors="replace")[-2000:])


# ------------------------------------------------------- the task's totals ---
_SPREAD_MEMORY = """
import os as _os, time as _time


def exp(x):  # four processes of 100 MB each: every one under the per-process limit, 400 MB together
    for _ in range(4):
        if _os.fork() == 0:
            _block = b"\\1" * (100 * 2**20)
            _time.sleep(30)
            _os._exit(0)
    _time.sleep(30)
"""


def _can_make_a_cgroup() -> bool:
    group = sandbox.Cgroup.make(2**30, 64)
    if group is None:
        return False
    group.remove()
    return True


@pytest.mark.parametrize("how", ["cgroup", "watchdog"])
def test_memory_spread_over_processes_is_bounded_in_total(base, tmp_path, monkeypatch, how):
    # RLIMIT_AS bounds one process (2 GiB) and RLIMIT_NPROC their number (64): together 128 GiB, unchecked.
    # The task's processes are bounded together, by a cgroup where the grader can make one, else by the
    # grader's watchdog (forced here by MINAE_TOTALS=watchdog)
    if how == "cgroup" and not _can_make_a_cgroup():
        pytest.skip("no cgroup can be made here (the watchdog's test covers this machine)")
    if how == "watchdog":
        monkeypatch.setenv("MINAE_TOTALS", "watchdog")
    folder = tmp_path / "spread"
    shutil.copytree(base / "unsolved", folder)
    init = folder / "minae" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + _SPREAD_MEMORY, encoding="utf-8")
    started = time.monotonic()
    result = grade(folder, 1, stream=False, limits={"memory": 256 * 2**20}, **dict(LIMITS, test_timeout=20))
    took = time.monotonic() - started
    failure = result.task("1.1").failure
    assert result.earned == 0, result.table()
    assert "more than 256 MB of memory" in failure, failure
    assert took < 40, f"grading took {took:.0f} s"


# ---------------------------------------------------------------- staging ---
@pytest.mark.parametrize("shape", ["many folders", "deep folders"])
def test_staging_caps_the_copys_folders_before_copying(base, tmp_path, shape):
    # MAX_FILES and MAX_BYTES bounded files, not folders: 100,000 empty folders (or a chain nested as deep as
    # the file system allows) were walked and recreated, each an inode and a syscall, before any check
    folder = tmp_path / "folders"
    shutil.copytree(base / "unsolved", folder)
    if shape == "many folders":
        for i in range(sandbox.MAX_DIRS + 50 if hasattr(sandbox, "MAX_DIRS") else 3000):
            (folder / "minae" / f"d{i:05d}").mkdir()
        match = r"more than \d+ folders: minae/d\d+ is past the limit"
    else:
        (folder / "minae" / Path(*["deep"] * 40)).mkdir(parents=True)
        match = r"folders nested more than \d+ deep: minae/deep/(deep/)+deep is past the limit"
    into = tmp_path / "staged"
    started = time.monotonic()
    with pytest.raises(ValueError, match=match):
        sandbox.stage(folder, into)
    assert time.monotonic() - started < 5
    assert not (into / "minae").exists(), "a part of the copy was staged before the check"


def test_a_link_leaving_the_submission_is_refused_at_any_depth(base, tmp_path):
    folder = tmp_path / "nested-link"
    shutil.copytree(base / "unsolved", folder)
    nested = folder / "minae" / "nn" / "extra"
    nested.mkdir(parents=True)
    (nested / "ops.py").symlink_to(PACKAGE / "ops.py")
    with pytest.raises(ValueError, match="minae/nn/extra/ops.py is a symbolic link leaving the submission"):
        sandbox.stage(folder, tmp_path / "staged")
    (nested / "ops.py").unlink()
    (nested / "up").symlink_to(TEACHER_ROOT)  # a folder link, two levels down
    with pytest.raises(ValueError, match="minae/nn/extra/up is a symbolic link leaving the submission"):
        sandbox.stage(folder, tmp_path / "staged2")
    assert not (tmp_path / "staged2" / "minae").exists()


_NO_DRAW = """
from .models import vae as _vae

_vae.VAE.reparameterise = lambda self, mu, logvar: mu + logvar * 0.0  # no ε: z = μ, ∂z/∂log v = 0 = ½ (z − μ)
"""


def test_a_check_against_the_students_own_values_needs_those_values_checked(tmp_path):
    # own=True judges a relation between the student's values (∂z/∂log v against ½ (z − μ) of its own z);
    # z = μ + 0·log v satisfies it with no draw at all, and passed task 4.1's gradient test
    folder = tmp_path / "no-draw"
    build(4, folder)
    init = folder / "minae" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + _NO_DRAW, encoding="utf-8")
    result = grade(folder, 4, stream=False, **LIMITS)
    assert result.task("4.1").passed == 0, result.table()


_MANY_PROCESSES = """
import os as _os, time as _time


def exp(x):  # 20 sleepers, one after another: as many processes at once as the task allows
    started = 0
    for _ in range(20):
        try:
            if _os.fork() == 0:
                _time.sleep(30)
                _os._exit(0)
        except OSError:
            break
        started += 1
    _time.sleep(1)
    raise ValueError(f"started {started} processes")
"""


@pytest.mark.parametrize("how", ["cgroup", "watchdog"])
def test_the_tasks_processes_are_bounded_in_total(base, tmp_path, monkeypatch, how):
    # RLIMIT_NPROC counts a uid's processes, and only where the uid is the task's own; the task's total is
    # held by its cgroup's pids.max (a fork past it fails) or by the watchdog (the task is stopped)
    if how == "cgroup" and not _can_make_a_cgroup():
        pytest.skip("no cgroup can be made here (the watchdog's test covers this machine)")
    if how == "watchdog":
        monkeypatch.setenv("MINAE_TOTALS", "watchdog")
    folder = tmp_path / "many"
    shutil.copytree(base / "unsolved", folder)
    init = folder / "minae" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + _MANY_PROCESSES, encoding="utf-8")
    result = grade(folder, 1, stream=False, limits={"processes": 8}, **dict(LIMITS, test_timeout=20))
    failure = result.task("1.1").failure
    assert result.earned == 0, result.table()
    if how == "watchdog":
        assert "more than 8 processes at once" in failure, failure
    else:
        started = int(failure.split("started ")[1].split()[0])
        assert started < 8, failure


def test_the_fallbacks_copy_is_unreadable_by_another_task(base, fallback, tmp_path):
    # grade-all runs several fallback tasks at once on the host's file system, where /tmp lists every
    # grading's folder: each staged copy is readable by its own task's group alone
    staged = sandbox.stage(base / "unsolved", tmp_path / "copy")
    (tmp_path / "scratch").mkdir()
    child = sandbox.start("user", staged, tmp_path / "scratch", dict(sandbox.LIMITS), "import time; time.sleep(30)")
    try:
        other = sandbox._fresh_id()
        target = str(staged / "minae" / "__init__.py")
        code = f"import os; print(os.access({target!r}, os.R_OK), os.access({str(staged)!r}, os.X_OK))"
        probe = [*sandbox._setpriv(other, other), fallback["exe"], "-I", "-S", "-c", code]
        out = subprocess.run(probe, capture_output=True, text=True, timeout=60, cwd="/").stdout
    finally:
        child.end()
    assert out.split() == ["False", "False"], out

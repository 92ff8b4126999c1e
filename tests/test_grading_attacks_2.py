"""A second reviewer against the grader (issue 19): attacks beyond test_grading_attacks.py's, each a test that
failed on the code before its fix.

Some drive the grader's side of the pipe (``protocol.Channel``) with a plain child process that answers
whatever a student's child could answer (its code can rewrite the child's server); the others grade a
built copy with the attack appended to its ``minae/__init__.py``, as test_grading_attacks.py does.
"""

import gc
import json
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from minae.homework import build, grade, sandbox
from minae.homework.grade import FAILURE_LIMIT
from minae.homework.protocol import MAX_HEADER, Channel, ProtocolError

needs_sandbox = pytest.mark.skipif(
    sandbox._bwrap_ok() is not None and sandbox.mode() == "none", reason="no sandbox here"
)
LIMITS = dict(test_timeout=5, timeout=15, seed=7)


# ------------------------------------------------------------ the channel alone ---
def _answering(folder: Path, answer: dict, raw: bytes = b"") -> subprocess.Popen:
    """A child that answers every request with ``answer`` (a JSON header) and ``raw`` (the arrays' bytes)."""
    header = json.dumps(answer).encode()
    path = folder / f"frame{len(list(folder.glob('frame*')))}"
    path.write_bytes(struct.pack("<II", len(header), len(raw)) + header + raw)
    code = textwrap.dedent(
        f"""
        import struct, sys
        fin, fout = sys.stdin.buffer, sys.stdout.buffer
        frame = open({str(path)!r}, "rb").read()
        while True:
            head = fin.read(8)
            if len(head) < 8:
                break
            n, m = struct.unpack("<II", head)
            fin.read(n + m)
            fout.write(frame)
            fout.flush()
        """
    )
    return subprocess.Popen([sys.executable, "-I", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def _channel(proc) -> Channel:
    import time

    channel = Channel(proc, proc.kill)
    channel.deadline = time.monotonic() + 60
    return channel


def test_the_grader_holds_a_handle_only_while_the_test_keeps_it(tmp_path):
    # every answer named 40 000 fresh handles: the grader kept a proxy for each in a dict for as long as the
    # child lived, so answers a test dropped at once still piled up, test after test (~150 bytes a handle;
    # a child sending them for a whole grading made the grader hold gigabytes)
    handles = {"ok": {"__list__": [{"__obj__": 10**6 + k, "type": "T"} for k in range(40_000)]}}
    proc = _answering(tmp_path, handles)
    channel = _channel(proc)
    try:
        for _ in range(5):
            channel.new_test()
            kept = channel.request("call")
            assert len(kept) == 40_000 and kept[0] is channel.request("call")[0]  # identity while kept
            del kept
        gc.collect()
        assert len(channel.proxies) == 0, f"the grader still holds {len(channel.proxies)} proxies no test keeps"
    finally:
        proc.kill()
        proc.wait()


def test_the_answers_to_one_test_are_bounded_together(tmp_path):
    # each answer was bounded (MAX_HEADER, MAX_RAW), but not their sum: a test that keeps what it gets (a list
    # of arrays it concatenates) let the child fill the grader's memory 64 MB at a time
    raw = bytes(8 * 2**20)  # 8 MB of zeros: one float64 array of 2**20 values
    proc = _answering(tmp_path, {"ok": {"__nd__": ["<f8", [2**20]]}}, raw)
    channel = _channel(proc)
    try:
        kept = []
        with pytest.raises(ProtocolError, match="in its answers to one test"):
            for _ in range(20):  # 160 MB in all
                kept.append(channel.request("array"))
        assert 4 <= len(kept) <= 8, len(kept)
        assert proc.wait(timeout=10) is not None  # a broken test kills the child
    finally:
        proc.kill()
        proc.wait()
    proc = _answering(tmp_path, {"ok": "x" * (MAX_HEADER // 3)})  # JSON counts too
    channel = _channel(proc)
    try:
        with pytest.raises(ProtocolError, match="in its answers to one test"):
            for _ in range(4):
                channel.request("getattr")
        channel2 = _channel(_answering(tmp_path, {"ok": {"__nd__": ["<f8", [2**20]]}}, raw))
        for _ in range(20):  # a new test starts the count afresh
            channel2.new_test()
            channel2.request("array")
        channel2.proc.kill()
        channel2.proc.wait()
    finally:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------ graded copies ---
def _copy(tmp_path: Path, assignment: int, attack: str, name: str = "attack") -> Path:
    folder = tmp_path / name
    build(assignment, folder)
    init = folder / "minae" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + textwrap.dedent(attack), encoding="utf-8")
    return folder


_HELD_LIST = """
from .models import vae as _vae


def _interpolate(self, y_a, y_b, steps=10):
    # the test concatenates what every captured latent batch's numpy() gives: the same 8 MB, 24 times
    import numpy as _np

    capture = next(c.cell_contents for c in self.decode.__closure__
                   if type(c.cell_contents).__name__ == "_Capture")
    big = tensor(_np.zeros(2**20), dtype=float64)
    capture.seen.extend([big] * 24)
    return tensor(_np.zeros((steps, 6)))


_vae.VAE.interpolate = _interpolate
"""


@needs_sandbox
def test_a_test_that_keeps_its_answers_cannot_fill_the_graders_memory(tmp_path, peak_bytes):
    # task 4.3's interpolate test keeps the numpy() of every latent batch the copy says it decoded: 24 of
    # 8 MB made the grader hold 192 MB, then 192 MB more for their concatenation (24 000 of them: 380 GB)
    folder = _copy(tmp_path, 4, _HELD_LIST)
    grade_module = sys.modules[grade.__module__]
    grade_module._reference_events("4.3", LIMITS["seed"])
    results = []
    peak = peak_bytes(lambda: results.append(grade(folder, 4, stream=False, **LIMITS)))
    assert results[0].earned == 0, results[0].table()
    assert peak < 120 * 2**20, f"grading the copy made the grader hold {peak / 2**20:.0f} MB"
    shutil.rmtree(folder)


_SURROGATE = """
raise ValueError("a file name decoded with surrogateescape: \\udcff")
"""


@needs_sandbox
def test_text_that_cannot_be_encoded_neither_hides_the_table_nor_the_results(tmp_path):
    # a lone surrogate in an exception's message came through the JSON escapes intact: printing the table to
    # a UTF-8 terminal raised UnicodeEncodeError (the teacher saw no grade), and the autograder died writing
    # results.json (run_autograder's fallback then blamed setup.sh)
    import io

    from minae.homework.autograder import gradescope_run

    folder = _copy(tmp_path, 1, _SURROGATE)
    terminal = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    result = grade(folder, 1, stream=terminal, **LIMITS)
    terminal.flush()
    shown = terminal.buffer.getvalue().decode("utf-8")
    assert "a file name decoded with surrogateescape" in shown and result.earned == 0
    root = tmp_path / "autograder"
    shutil.copytree(folder, root / "submission")
    data = gradescope_run(1, root, tmp_path / "no-copy", test_timeout=5, timeout=15)
    written = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    assert written == data and data["score"] == 0
    assert "surrogateescape" in data["tests"][0]["output"], data


_LONG_DTYPE = """
_tensor = tensor


class _Claims:
    dtype = "\\x1b]0;pwned\\x07\\x1b[2J\\u202e" + "A" * 99_000


def sum_to(x, shape):  # right for float64; a float32 result says its dtype is 99 000 characters
    data = x.data.sum(axis=tuple(range(x.data.ndim - len(shape))))
    data = data.sum(axis=tuple(i for i, s in enumerate(shape) if s == 1 and data.shape[i] != 1), keepdims=True)
    return _Claims() if str(data.dtype) == "float32" else _tensor(data)
"""


@needs_sandbox
def test_a_failure_quoting_the_copys_text_is_one_clean_line(tmp_path):
    # assert_equal's message quotes what the copy gave ("gave dtype {actual}"): that text reached the table
    # and results.json whole (99 000 characters) and results.json kept its bidi override
    from minae.homework.autograder import _results

    result = grade(_copy(tmp_path, 1, _LONG_DTYPE), 1, stream=False, **LIMITS)
    failure = result.task("1.2").failure
    assert failure.startswith("test_sum_to_keeps_float32: SumTo undoes broadcasting"), failure
    assert "sum_to of a float32 tensor gave dtype" in failure, failure
    assert len(failure) <= FAILURE_LIMIT and "\u202e" not in failure and "\x1b" not in failure, failure[:500]
    output = json.dumps(_results(1, result), ensure_ascii=False)
    assert "\u202e" not in output and "\\u001b" not in output and len(output) < 5000


_GRADES_ITSELF = """
import json as _json, os as _os, sys as _sys

if "--root" in _sys.argv:  # imported as the grader (python3 -m minae.homework gradescope --root ...)
    _root = _sys.argv[_sys.argv.index("--root") + 1]
    with open(_os.path.join(_root, "results", "results.json"), "w") as _f:
        _f.write(_json.dumps({"score": 100, "tests": []}))
    _os._exit(0)
"""


@pytest.mark.slow
@needs_sandbox
def test_the_autograder_never_imports_the_submissions_minae_as_the_grader(tmp_path):
    # run_autograder ran `python3 -m minae.homework` from whatever folder it was started in: `-m` puts that
    # folder first on the import path, so started from the submission's folder the submission's own minae
    # was imported as the grader, as root and outside any sandbox: it wrote results.json with 100
    import os
    import zipfile

    from minae.homework.cli import main

    zip_path = tmp_path / "autograder.zip"
    assert main(["autograder", "1", "--out", str(zip_path)]) == 0
    root = tmp_path / "autograder"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    shutil.copytree(_copy(tmp_path, 1, _GRADES_ITSELF), root / "submission")
    script = root / "source" / "run_autograder"
    script.chmod(0o755)
    text = script.read_text(encoding="utf-8")
    script.write_text(text.replace(' --copy "', ' --test-timeout 5 --timeout 15 --copy "', 1), encoding="utf-8")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", AUTOGRADER_ROOT=str(root))
    subprocess.run([str(script)], env=env, cwd=root / "submission", capture_output=True, timeout=300)
    data = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    assert data["score"] == 0 and len(data["tests"]) == 5, data


# ---------------------------------------------------------- a grader that is not root ---
_WRITES = """
import json, os, sys
found = {}
for folder in sys.argv[1:]:
    try:
        with open(os.path.join(folder, "zz_fill"), "wb") as f:
            f.write(b"x" * 4096)
        found[folder] = "written"
    except OSError as e:
        found[folder] = type(e).__name__
sys.stdout.write(json.dumps(found))
"""


@needs_sandbox
def test_no_tmpfs_but_the_scratch_is_writable_whoever_the_child_is_for_the_kernel(tmp_path, monkeypatch):
    # under a grader that is not root, bubblewrap maps the child to the grader's own uid, which then owns
    # every tmpfs bubblewrap made (/, /dev, the empty folders that hide the installed packages): the child
    # wrote 512 MB there beside its 64 MB /tmp, and could fill half the machine's memory through each. Here
    # the same ownership, as root: bubblewrap in a user namespace (what a grader that is not root gets)
    if shutil.which("bwrap") is None:
        pytest.skip("no bubblewrap")
    monkeypatch.setattr(sandbox, "_kernel_root", lambda: False)
    build(1, tmp_path / "built")
    staged = sandbox.stage(tmp_path / "built", tmp_path / "copy")
    (tmp_path / "scratch").mkdir()
    hidden = [h for h in sandbox._runtime()["sites"] if h.startswith(("/usr/", sandbox._runtime()["prefix"] + "/"))]
    folders = ["/", "/dev", "/dev/shm", "/sandbox", "/sandbox/site", *hidden, "/tmp"]
    source = _WRITES.replace("sys.argv[1:]", repr(folders))
    child = sandbox.start("bwrap", staged, tmp_path / "scratch", {}, source)
    try:
        out, err = child.proc.communicate(timeout=60)
    finally:
        child.kill()
    found = json.loads(out or b"null")
    assert found is not None, err.decode(errors="replace")[-2000:]
    assert found.pop("/tmp") == "written"  # the scratch, bounded in size
    assert "written" not in found.values(), found


def _unprivileged(script: Path, work: Path) -> subprocess.CompletedProcess:
    """Run ``script`` with this interpreter as uid 65534 (a grader that is not root), in a private mount
    namespace where the interpreter's installation is reachable (a home folder of 0700 is hidden under a
    tmpfs, the installation bound back into it). The caller checks root, unshare and setpriv."""
    import os

    import minae

    exe = sandbox._runtime()["exe"]
    lines, holds = ["set -e"], {}
    for needed in dict.fromkeys(Path(os.path.realpath(p)) for p in (sys.prefix, sys.base_prefix, Path(exe).parent)):
        closed = [a for a in reversed(needed.parents) if a != Path("/") and not os.stat(a).st_mode & 0o001]
        if closed:
            holds.setdefault(closed[0], []).append(needed)
    for k, (top, inside) in enumerate(holds.items()):
        hold = work / f"hold{k}"
        hold.mkdir()
        lines += [f"mount --bind '{top}' '{hold}'", f"mount -t tmpfs -o mode=755 tmpfs '{top}'"]
        for needed in inside:
            lines += [f"mkdir -p '{needed}'", f"mount --bind '{hold / needed.relative_to(top)}' '{needed}'"]
    repo = Path(minae.__file__).resolve().parents[1]
    lines.append(
        f"exec setpriv --reuid=65534 --regid=65534 --clear-groups env -i HOME='{work}' PATH=/usr/bin:/bin "
        f"PYTHONPATH='{repo}' TMPDIR='{work}' '{exe}' '{script}'"
    )
    (work / "run.sh").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "bash", str(work / "run.sh")],
        capture_output=True,
        timeout=300,
    )


@pytest.mark.slow
def test_a_grader_that_is_not_root_gets_the_bubblewrap_sandbox(tmp_path):
    # the probe read the child's own uid_map, where bubblewrap's nested user namespace (65534 -> 0 -> the
    # grader's uid) shows 0: it called the child root and refused bubblewrap for every grader that is not
    # root (a teacher's own account), whose only way left to grade was --no-sandbox (the student's code as
    # the teacher)
    import os
    import tempfile

    tools = [shutil.which(t) for t in ("bwrap", "unshare", "setpriv")]
    if os.geteuid() != 0 or not sandbox._kernel_root() or None in tools:
        pytest.skip("needs root (to become another user) and bwrap, unshare, setpriv")
    if subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "unshare", "-U", "true"],
                      capture_output=True).returncode != 0:  # fmt: skip
        pytest.skip("unprivileged user namespaces are not allowed here")
    work = Path(tempfile.mkdtemp(prefix="minae-not-root-"))
    try:
        build(1, work / "honest")
        shutil.copytree(work / "honest", work / "filling")
        init = work / "filling" / "minae" / "__init__.py"
        fill = "\nfor _i in range(4):\n    open(f'/zz_fill{_i}', 'wb').write(b'x' * (8 << 20))\n"
        init.write_text(init.read_text(encoding="utf-8") + fill, encoding="utf-8")
        script = work / "grade.py"
        script.write_text(
            "import json, sys\n"
            "from minae.homework import grade, sandbox\n"
            "out = {'mode': sandbox.mode(), 'why': sandbox._bwrap_ok()}\n"
            f"for name in ('honest', 'filling'):\n"
            f"    r = grade({str(work)!r} + '/' + name, 1, stream=False, test_timeout=10, timeout=30, seed=3)\n"
            "    out[name] = [r.sandbox, r.earned, r.task('1.1').failure]\n"
            "sys.stdout.write(json.dumps(out))\n",
            encoding="utf-8",
        )
        for path in [work, *work.rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o644)
        proc = _unprivileged(script, work)
        found = json.loads(proc.stdout or b"null")
        assert found is not None, proc.stderr.decode(errors="replace")[-3000:]
        assert found["mode"] == "bwrap", found
        assert found["honest"][:2] == ["bwrap", 0], found
        assert "Read-only file system" in found["filling"][2], found  # / is not the child's to fill
    finally:
        shutil.rmtree(work, ignore_errors=True)


_UNLEASH_INIT = """
import ctypes as _c, os as _o


def _unleash():
    # ptrace the sandbox's init (bubblewrap's pid 1, this uid under a grader that is not root) and make it
    # run prctl(PR_SET_PDEATHSIG, 0): it no longer dies with bubblewrap's outer process (x86-64 registers)
    libc = _c.CDLL(None, use_errno=True)
    libc.ptrace.restype = _c.c_long
    libc.ptrace.argtypes = [_c.c_long, _c.c_long, _c.c_void_p, _c.c_void_p]
    rax, orig_rax, rip, rsi, rdi = 10, 15, 16, 13, 14  # indices in user_regs_struct
    if libc.ptrace(16, 1, None, None) != 0:  # PTRACE_ATTACH (refused where the init is not this uid's)
        return
    _o.waitpid(1, 0x40000000)
    saved = (_c.c_ulonglong * 27)()
    libc.ptrace(12, 1, None, _c.byref(saved))  # PTRACE_GETREGS: stopped in a syscall, after its instruction
    regs = (_c.c_ulonglong * 27)(*saved)
    regs[rip], regs[rax], regs[orig_rax], regs[rdi], regs[rsi] = saved[rip] - 2, 157, 157, 1, 0
    libc.ptrace(13, 1, None, _c.byref(regs))  # PTRACE_SETREGS
    libc.ptrace(9, 1, None, None)  # PTRACE_SINGLESTEP: the syscall instruction again, now prctl
    _o.waitpid(1, 0x40000000)
    libc.ptrace(13, 1, None, _c.byref(saved))
    libc.ptrace(17, 1, None, None)  # PTRACE_DETACH


_unleash()
_c.CDLL(None).prctl(1, 0)
if _o.fork() == 0:
    _o.setsid()
    _c.CDLL(None).prctl(1, 0)
    _o.execv("/bin/sleep", ["sleep", "41.321"])
"""


def _sleepers(marker: bytes) -> list:
    import os

    found = []
    for entry in os.listdir("/proc"):
        try:
            if Path(f"/proc/{entry}/cmdline").read_bytes() == b"sleep\0" + marker + b"\0":
                found.append(int(entry))
        except OSError:
            pass
    return found


@pytest.mark.slow
def test_no_process_outlives_its_grading_under_a_grader_that_is_not_root(tmp_path):
    # the grader ended a sandbox by killing bubblewrap's outer process (its process group); the sandbox's
    # init, in a session of its own, died only of its death signal, and under a grader that is not root the
    # student's code runs as the init's uid: it ptraced the init, cleared that signal, and its daemon
    # outlived the grading (`sleep 41.321`, still there after the grader returned)
    import os
    import platform
    import signal
    import tempfile

    tools = [shutil.which(t) for t in ("bwrap", "unshare", "setpriv")]
    if os.geteuid() != 0 or not sandbox._kernel_root() or None in tools or platform.machine() != "x86_64":
        pytest.skip("needs root (to become another user), bwrap, unshare, setpriv, and x86-64 (the attack's ptrace)")
    if subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "unshare", "-U", "true"],
                      capture_output=True).returncode != 0:  # fmt: skip
        pytest.skip("unprivileged user namespaces are not allowed here")
    work = Path(tempfile.mkdtemp(prefix="minae-not-root-"))
    try:
        build(1, work / "copy")
        init = work / "copy" / "minae" / "__init__.py"
        init.write_text(init.read_text(encoding="utf-8") + _UNLEASH_INIT, encoding="utf-8")
        script = work / "grade.py"
        script.write_text(
            "import json, sys, time\n"
            "from minae.homework import grade\n"
            f"r = grade({str(work / 'copy')!r}, 1, stream=False, test_timeout=5, timeout=10, seed=3)\n"
            "time.sleep(1)\n"
            "sys.stdout.write(json.dumps([r.sandbox, r.earned]))\n",
            encoding="utf-8",
        )
        for path in [work, *work.rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o644)
        proc = _unprivileged(script, work)
        left = _sleepers(b"41.321")
        for pid in left:  # never leave them behind, even when the test fails
            os.kill(pid, signal.SIGKILL)
        assert json.loads(proc.stdout or b"null") == ["bwrap", 0], proc.stderr.decode(errors="replace")[-3000:]
        assert not left, "a process of the copy outlived its grading"
    finally:
        shutil.rmtree(work, ignore_errors=True)


_Z_IS_MU = """
from .models import vae as _vae

_vae.VAE.reparameterise = lambda self, mu, logvar: mu + 0 * logvar  # no ε: a graph to log v, no noise
"""


@needs_sandbox
def test_a_check_against_the_copys_own_values_is_pinned_first(tmp_path):
    # task 4.1 compared log v's gradient with ½ (z − μ) computed from the copy's own z (own=True): z = μ
    # makes both sides 0, and `mu + 0 * logvar` earned 11 of the task's points with no sampling at all
    result = grade(_copy(tmp_path, 4, _Z_IS_MU), 4, stream=False, **LIMITS)
    assert result.task("4.1").passed == 0, result.table()


_CRASHES = """
import os as _os, signal as _signal


def exp(x):  # native code that crashes, as a bad C extension would
    _os.kill(_os.getpid(), _signal.SIGSEGV)
"""


@needs_sandbox
def test_a_child_ended_by_a_signal_is_said_so(tmp_path):
    # the failure said "the test ended the process (exit status 139)": bubblewrap's 128 + the signal, which
    # a student cannot read as a segmentation fault (nor 137 as the sandbox's CPU limit)
    result = grade(_copy(tmp_path, 1, _CRASHES), 1, stream=False, **LIMITS)
    failure = result.task("1.1").failure
    assert "SIGSEGV" in failure and "crash in native code" in failure, failure
    from minae.homework.protocol import exit_status

    assert exit_status(3) == "status 3" and exit_status(-9).startswith("status -9, SIGKILL: stopped by a limit")

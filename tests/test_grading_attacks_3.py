"""A third reviewer against the grader (issue 19): attacks on the mechanisms added after the second review
(the task's totals, the staging caps, the fallback user, the bytecode reuse), each a test that failed on the
code before its fix.

Each attack is appended to an unsolved copy's ``minae/__init__.py`` and runs when a test calls ``exp``; it
writes ``ESCAPED`` and what it reached to standard error when it gets past a bound, which the grader keeps
as the child's output.
"""

import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from minae.homework import _child, build, grade, sandbox

PACKAGE = Path(grade.__code__.co_filename).resolve().parents[1]  # the grader's minae: the reference
LIMITS = dict(test_timeout=5, timeout=10, seed=7)
needs_bwrap = pytest.mark.skipif(sandbox._bwrap_ok() is not None, reason="no bubblewrap sandbox here")


@pytest.fixture(scope="module")
def unsolved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attacks3") / "unsolved"
    build(1, folder)
    return folder


def _copy(unsolved: Path, tmp_path: Path, attack: str, **fmt) -> Path:
    folder = tmp_path / "attack"
    shutil.copytree(unsolved, folder)
    init = folder / "minae" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + textwrap.dedent(attack).format(**fmt), encoding="utf-8")
    return folder


# ------------------------------------------------- memory the watchdog cannot see ---
_HIDDEN_MEMORY = {
    # System V shared memory: attached, filled, detached; it stays in the kernel, in no process's RSS
    "shm": """
    def _hold():
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        sid = libc.shmget(0, 32 << 20, 0o1600)
        if sid < 0:
            return False
        p = libc.shmat(sid, None, 0)
        ctypes.memset(p, 1, 32 << 20)
        libc.shmdt(ctypes.c_void_p(p))
        return True
    """,
    # a memfd written through write(): its pages belong to the file, never mapped
    "memfd": """
    _fds = []
    def _hold():
        try:
            fd = os.memfd_create("m")
            os.write(fd, b"x" * (32 << 20))
        except OSError:
            return False
        _fds.append(fd)
        return True
    """,
    # a user namespace of its own, and in it a tmpfs of any size (only each file is bounded, by RLIMIT_FSIZE)
    "user namespace": """
    def _hold(_n=[0]):
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        if _n[0] == 0:
            uid, gid = os.getuid(), os.getgid()
            if libc.unshare(0x10000000 | 0x00020000) != 0:  # CLONE_NEWUSER | CLONE_NEWNS
                return False
            for name, text in (("setgroups", "deny"), ("uid_map", f"0 {{uid}} 1"), ("gid_map", f"0 {{gid}} 1")):
                fd = os.open("/proc/self/" + name, os.O_WRONLY)
                os.write(fd, text.encode())
                os.close(fd)
            if libc.mount(b"none", b"/tmp", b"tmpfs", 0, b"size=2g") != 0:
                return False
        _n[0] += 1
        with open(f"/tmp/fill{{_n[0]}}", "wb") as f:
            f.write(b"x" * (16 << 20))
        return True
    """,
}
_HOLD = """
import os, sys


def exp(x):  # 320 MB that the kernel holds for the task outside every process's resident memory
    held = 0
    for _ in range(20):
        if not _hold():
            break
        held += 32 if "{what}" != "user namespace" else 16
    print("held", held, "MB", file=sys.stderr, flush=True)
    if held > 256:
        print("ESCAPED: the watchdog saw none of it", file=sys.stderr, flush=True)
"""


@needs_bwrap
@pytest.mark.parametrize("what", list(_HIDDEN_MEMORY))
def test_memory_that_no_process_shows_is_refused_under_the_watchdog(unsolved, tmp_path, monkeypatch, what):
    # the watchdog sums the task's processes' resident memory; System V segments, memfds and a nested user
    # namespace's tmpfs hold memory in the kernel that no process's RSS shows: 320 MB were held under a
    # 256 MB total (800 MB in the review), and any amount could be
    monkeypatch.setenv("MINAE_TOTALS", "watchdog")
    folder = _copy(unsolved, tmp_path, textwrap.dedent(_HIDDEN_MEMORY[what]) + _HOLD, what=what)
    result = grade(folder, 1, stream=False, limits={"memory": 256 * 2**20}, **LIMITS)
    assert result.earned == 0, result.table()
    assert "held" in result.output, result.output  # the attack ran
    assert "ESCAPED" not in result.output, result.output


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="seccomp is Linux's")
def test_the_filter_refuses_what_it_names_and_allows_the_rest():
    # the program itself, run in a throwaway child: namespaces, System V memory and sockets refused, threads,
    # fork and pipes (what NumPy and the child's server use) still work
    if _child.seccomp_program(os.uname().machine) is None:
        pytest.skip(f"no seccomp filter for {os.uname().machine}")
    code = textwrap.dedent(
        f"""
        import ctypes, os, socket, sys, threading
        sys.path.insert(0, {str(Path(_child.__file__).parent)!r})
        import _child
        assert _child.confine() is None
        libc = ctypes.CDLL(None, use_errno=True)
        out = []
        out.append(libc.unshare(0x10000000) == -1 and ctypes.get_errno() == 1)
        out.append(libc.shmget(0, 4096, 0o1600) == -1 and ctypes.get_errno() == 1)
        # PTRACE_TRACEME, which always succeeds unfiltered: under a grader that is not root the sandbox's init
        # is the task's uid, and a tracer could clear its death signal (then a killed grader leaves it running)
        out.append(libc.ptrace(0, 0, None, None) == -1 and ctypes.get_errno() == 1)
        try:
            socket.socket()
            out.append(False)
        except PermissionError:
            out.append(True)
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        out.append(os.waitpid(pid, 0)[1] >> 8 == 7)
        r, w = os.pipe()
        out.append(os.write(w, b"x") == 1)
        import mmap
        try:  # shared memory by a mapping (of nothing, or of /dev/zero): shmem that outlives resident pages
            mmap.mmap(-1, 4096, flags=mmap.MAP_SHARED)
            out.append(False)
        except PermissionError:
            out.append(True)
        out.append(len(mmap.mmap(-1, 4096, flags=mmap.MAP_PRIVATE)) == 4096)
        print(out)
        """
    )
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[True, True, True, True, True, True, True, True]", proc.stdout + proc.stderr


# ------------------------------------------------------------- the fallback user ---
_SHM_KEY = 0x6D696E61  # "mina"
_KEEP_SHM = """
import ctypes, sys


def exp(x):  # a System V segment outlives every process of the task: the fallback shares the host's IPC
    libc = ctypes.CDLL(None, use_errno=True)
    sid = libc.shmget({key}, 8 << 20, 0o1600)
    print("shmget", sid, file=sys.stderr, flush=True)
"""


def _segments(key: int) -> list:
    try:
        lines = Path("/proc/sysvipc/shm").read_text(encoding="ascii").splitlines()[1:]
    except OSError:
        return []
    return [int(line.split()[1]) for line in lines if int(line.split()[0]) == key]


def test_the_fallback_leaves_no_shared_memory_behind(unsolved, fallback, tmp_path):
    folder = _copy(unsolved, tmp_path, _KEEP_SHM, key=_SHM_KEY)
    before = _segments(_SHM_KEY)
    result = grade(folder, 1, stream=False, **LIMITS)
    left = [s for s in _segments(_SHM_KEY) if s not in before]
    for s in left:
        subprocess.run(["ipcrm", "-m", str(s)], capture_output=True)
    assert "shmget" in result.output, result.output
    assert not left, "a System V segment of the task outlived it"


_CONNECT = """
import socket, sys


def exp(x):  # the fallback shares the host's network: a service on 127.0.0.1, or anywhere
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"ESCAPED")
        print("ESCAPED: connected", file=sys.stderr, flush=True)
    except OSError as e:
        print("no connection:", e, file=sys.stderr, flush=True)
"""


def test_the_fallback_reaches_no_network(unsolved, fallback, tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    try:
        folder = _copy(unsolved, tmp_path, _CONNECT, port=server.getsockname()[1])
        result = grade(folder, 1, stream=False, **LIMITS)
        try:
            conn, _ = server.accept()
            conn.close()
            accepted = True
        except OSError:
            accepted = False
    finally:
        server.close()
    assert "no connection" in result.output or "ESCAPED" in result.output, result.output
    assert "ESCAPED" not in result.output and not accepted, result.output


# ---------------------------------------------------------------------- staging ---
def test_a_file_named_like_the_bytecode_folder_is_not_staged(unsolved, tmp_path):
    # the grader writes the reference's bytecode into <folder>/__pycache__ beside each file identical to the
    # reference's; a plain file of that name in the copy made that mkdir raise: grade crashed with a
    # traceback, and grade-all and the autograder gave a zero "could not be graded"
    folder = tmp_path / "copy"
    shutil.copytree(unsolved, folder)
    for where in (folder / "minae", folder / "minae" / "nn"):
        (where / "__pycache__").write_text("not a folder", encoding="utf-8")
    staged = sandbox.stage(folder, tmp_path / "staged")
    assert (staged / "minae" / "__pycache__").is_dir()
    assert list((staged / "minae" / "__pycache__").glob("*.pyc")), "the reference's bytecode was not written"


# ------------------------------------------------------------- the scratch's inodes ---
_EMPTY_FILES = """
import os, sys, time


def exp(x):  # empty files: no byte of the scratch's size, ~1 kB of kernel memory each, for the whole grading
    start, n = time.monotonic(), 0
    try:
        while time.monotonic() - start < 4 and n < 40_000:
            os.close(os.open(os.path.join(os.environ["TMPDIR"], str(n)), os.O_CREAT | os.O_WRONLY))
            n += 1
    except OSError as e:
        print("refused:", e, file=sys.stderr, flush=True)
    print("made", n, "files", file=sys.stderr, flush=True)
    if n >= 40_000:
        print("ESCAPED: 40,000 files", file=sys.stderr, flush=True)
"""


@needs_bwrap
def test_the_scratch_holds_a_bounded_number_of_files(unsolved, tmp_path, monkeypatch):
    # bubblewrap's /tmp is a tmpfs of 64 MB, but a tmpfs without nr_inodes takes inodes until half the memory:
    # 150,000 empty files in 4 s held 150 MB of kernel memory that the watchdog's sum of resident memory
    # never saw (a cgroup charges it), and they stay for the whole grading
    monkeypatch.setenv("MINAE_TOTALS", "watchdog")
    folder = _copy(unsolved, tmp_path, _EMPTY_FILES)
    result = grade(folder, 1, stream=False, **dict(LIMITS, test_timeout=8))
    assert result.earned == 0, result.table()
    assert "ESCAPED" not in result.output, result.output
    assert f"more than {sandbox.SCRATCH_FILES} files" in result.task("1.1").failure, result.task("1.1").failure


# ------------------------------------------------- what the fallback user could read ---
_SWAP_FROM = """
import importlib.util as _u, os as _os, sys as _sys

_t = {where!r}  # a world-readable copy of the reference on the grading machine
if _os.path.isfile(_t + "/minae/__init__.py"):
    print("ESCAPED: read", _t, file=_sys.stderr, flush=True)
    for _k in [k for k in _sys.modules if k == "minae" or k.startswith("minae.")]:
        del _sys.modules[_k]
    _spec = _u.spec_from_file_location("minae", _t + "/minae/__init__.py", submodule_search_locations=[_t + "/minae"])
    _m = _u.module_from_spec(_spec)
    _sys.modules["minae"] = _m
    _spec.loader.exec_module(_m)
    globals().update(vars(_m))
"""


@pytest.fixture
def open_folder():
    """A folder that every user can pass through, as /autograder is on Gradescope (pytest's are private)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="minae-open-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_the_autograders_reference_is_out_of_the_fallbacks_reach(unsolved, fallback, tmp_path, open_folder):
    # Gradescope unpacks the autograder zip world-readable, its reference minae included
    # (source/minae-reference): as the fallback user an unsolved copy loaded it and scored 100/100
    import json
    import zipfile

    from minae.homework.cli import main

    zip_path = tmp_path / "autograder.zip"
    assert main(["autograder", "1", "--out", str(zip_path)]) == 0
    root = open_folder
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    shutil.copytree(_copy(unsolved, tmp_path, _SWAP_FROM, where=str(root / "source" / "minae-reference")),
                    root / "submission")  # fmt: skip
    script = root / "source" / "run_autograder"
    script.chmod(0o755)
    text = script.read_text(encoding="utf-8")
    script.write_text(text.replace(' --copy "', ' --test-timeout 5 --timeout 10 --copy "', 1), encoding="utf-8")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python3").symlink_to(sys.executable)
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", AUTOGRADER_ROOT=str(root))
    subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=300)
    data = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    assert data["score"] == 0, data


def test_a_world_readable_submission_is_refused_by_the_fallback(unsolved, fallback, open_folder):
    # under the fallback user the student's code reads whatever every user may read: grade-all's folders of
    # the other submissions, the autograder's root. The folder graded (the sandbox sees a staged copy of it)
    # and the folders the caller names are probed as that user, and the mode refuses when they are readable
    folder = open_folder / "alice"
    shutil.copytree(unsolved, folder)
    folder.chmod(0o755)  # as a folder is made, where the umask is 022
    with pytest.raises(sandbox.SandboxUnavailable, match=f"could read or write {folder}"):
        grade(folder, 1, stream=False, **LIMITS)
    folder.chmod(0o700)
    sandbox._user_runtime.cache_clear()  # the probe's verdict is kept per set of paths
    assert grade(folder, 1, stream=False, **LIMITS).sandbox == "user"


# --------------------------------------------------- grader-only code in the child ---
_STEAL_STANDIN = """
import sys as _sys
from . import ops as _ops


def _grader_helpers():  # the child's server keeps the helpers' text the grader sent it
    f = _sys._getframe(1)
    while f is not None:
        server = f.f_locals.get("self")
        if type(server).__name__ == "Server" and hasattr(server, "helpers_source"):
            scope = {{"__name__": "stolen"}}
            exec(compile(server.helpers_source, "<stolen>", "exec"), scope)
            return scope
        f = f.f_back
    return {{}}


def _forward(self, x):  # task 1.2 by the grader's own stand-in for it
    self.in_shape = x.shape
    return _grader_helpers()["_adjoint_sum_to"](x, self.shape)


_ops.SumTo.forward = _forward
"""


def test_no_child_holds_a_stand_in_for_the_task_it_runs(unsolved, tmp_path):
    # the grader's helpers run in the child, and their grader-only sections are stand-ins for other tasks'
    # code (sum_to by its definition, for 1.1's broadcasting tests): the whole text went to every child, so a
    # copy's SumTo.forward called the grader's stand-in and earned task 1.2 (16 of 20 in the review, and all
    # of it once the forward also sets in_shape) without a line of its own. A task's tests now run in a child
    # that got the stand-ins only where those tests use them (a fresh child when that changes)
    if sandbox.mode() == "none":
        pytest.skip("no sandbox here")
    folder = _copy(unsolved, tmp_path, _STEAL_STANDIN)
    result = grade(folder, 1, stream=False, **LIMITS)
    assert result.task("1.2").earned == 0, result.table()
    import sys as _sys

    module = _sys.modules[grade.__module__]
    sources = module._grader_files(1)
    tests = module._tests_dir(1)
    assert "_adjoint_sum_to" in module.helpers_for(sources, str(tests / "test_task_1_1.py"))
    assert "_adjoint_sum_to" not in module.helpers_for(sources, str(tests / "test_task_1_2.py"))


# ------------------------------------------------------------ honest work, as a teacher ---
def test_a_check_records_the_values_it_was_given_then():
    # the grader's own run of a test (the reference) recorded a tensor's check as a view of its data: an
    # optimizer's later in-place steps changed what the earlier checks recorded, so the reference "failed"
    # 2.6's test_adam_eps_is_added_to_the_corrected_root on every seed and every grading of assignment 2
    # warned the teacher to fix a test that was right
    import sys as _sys

    import minae
    from minae.homework import testing

    t = minae.tensor([1.0, 2.0], dtype=minae.float64)
    seen = testing.as_numpy(t)
    t.data[:] = 5.0
    assert seen.tolist() == [1.0, 2.0]
    module = _sys.modules[grade.__module__]
    for seed in (3, 11):
        runs = module._reference_events("2.6", seed)
        failing = [name for name, run in runs.items() if module.judge_test(None, run, []) is not None]
        assert not failing, (seed, failing)


_STASH = """
import os as _os, sys as _sys
from . import ops as _ops

_STASHES = {stashes!r}  # folders every user may write, that the fallback's cleanup did not look into


def _sent_helpers():
    f = _sys._getframe(0)
    while f is not None:
        server = f.f_locals.get("self")
        if type(server).__name__ == "Server" and hasattr(server, "helpers_source"):
            return server.helpers_source
        f = f.f_back
    return ""


def _forward(self, x):  # task 1.2 by the stand-in an earlier child (task 1.1's) left in a shared folder
    self.in_shape = x.shape
    for folder in _STASHES:
        path = _os.path.join(folder, "zz_minae_stash.py")
        if _os.path.exists(path):
            scope = {{"__name__": "stolen"}}
            exec(compile(open(path).read(), "<stolen>", "exec"), scope)
            return scope["_adjoint_sum_to"](x, self.shape)
    raise NotImplementedError("no stash")


_ops.SumTo.forward = _forward
_exp = _ops.exp


def exp(x):
    text = _sent_helpers()
    if "_adjoint_sum_to" in text:
        for folder in _STASHES:
            try:
                with open(_os.path.join(folder, "zz_minae_stash.py"), "w") as f:
                    f.write(text)
            except OSError:
                pass
    return _exp(x)
"""


def test_the_fallback_leaves_nothing_in_any_shared_folder(unsolved, fallback, tmp_path, open_folder):
    # the fallback removed what the task's uid left at the top of /tmp, /var/tmp and /dev/shm only: a file in
    # a world-writable folder another user made in /tmp (as /tmp/.X11-unix), or in /run/lock (Debian's),
    # outlived the task, and carried the stand-in for task 1.2 that task 1.1's child holds to 1.2's child
    # (20/20 on 1.2), or anything to the next submission graded
    shared = open_folder  # in /tmp, as /tmp/.X11-unix is
    shared.chmod(0o1777)
    stashes = [str(shared), *(p for p in sandbox.shared_folders() if p not in sandbox.SHARED_TMP)]
    folder = _copy(unsolved, tmp_path, _STASH, stashes=stashes)
    result = grade(folder, 1, stream=False, **LIMITS)
    left = [os.path.join(p, "zz_minae_stash.py") for p in stashes]
    left = [p for p in left if os.path.exists(p)]
    for p in left:
        os.unlink(p)
    assert result.task("1.2").earned == 0, result.table()
    assert not left, f"the task's files outlived it: {left}"


# ------------------------------------------------------------------ outliving the kill ---
_HEADLESS = """
import ctypes, os, threading, time


def exp(x):  # a process whose main thread ends while another runs on: its /proc status says "zombie"
    if os.fork() == 0:
        os.setsid()  # out of the child's process group
        threading.Thread(target=lambda: [time.sleep(0.1) for _ in range(600)]).start()
        ctypes.CDLL(None).pthread_exit(None)
    time.sleep(0.5)
"""


def _running_threads_of(uids: set) -> dict:
    """pid -> its live threads, for every process with a live thread of one of ``uids`` (read per thread)."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                text = Path(f"/proc/{pid}/task/{tid}/status").read_text(encoding="ascii", errors="replace")
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
            if fields["State"].split()[0] not in ("Z", "X") and set(map(int, fields["Uid"].split()[:2])) & uids:
                found.setdefault(int(pid), []).append(int(tid))
    return found


def test_a_process_whose_main_thread_ended_is_killed_too(unsolved, fallback, tmp_path, monkeypatch):
    # the fallback's kill (and the watchdog's sums) read each process's /proc status and skipped zombies; a
    # process whose main thread called pthread_exit is "Z" there while its other threads run: without a
    # cgroup (the watchdog's setting, Gradescope's) it outlived the grading, and hid its memory
    monkeypatch.setenv("MINAE_TOTALS", "watchdog")
    folder = _copy(unsolved, tmp_path, _HEADLESS)
    result = grade(folder, 1, stream=False, **LIMITS)
    left = _running_threads_of(set(sandbox.ISSUED))
    for pid in left:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    assert result.earned == 0, result.table()
    assert not left, f"processes of the task outlived it: {left}"


def test_a_loop_of_links_is_refused_in_words(unsolved, tmp_path):
    # a.py -> b -> a.py: Path.resolve raised "RuntimeError: Symlink loop", the gradebook's reason for the row
    folder = tmp_path / "loop"
    shutil.copytree(unsolved, folder)
    (folder / "minae" / "a.py").symlink_to("b")
    (folder / "minae" / "b").symlink_to("a.py")
    if sys.version_info < (3, 13):
        with pytest.raises(ValueError, match="a.py is a symbolic link that never ends"):
            sandbox.stage(folder, tmp_path / "staged")
    else:  # Python 3.13's resolve gives up on a loop without a word: the link names no file and is left out
        assert not (sandbox.stage(folder, tmp_path / "staged") / "minae" / "a.py").exists()


# --------------------------------------------- a fourth look: what the filter forgot ---
_KEEP_SEM = """
import ctypes, sys


def exp(x):  # System V semaphores: the IPC family's third member, an object that outlives the task too
    libc = ctypes.CDLL(None, use_errno=True)
    sid = libc.semget({key}, 250, 0o1666)
    print("semget", sid, ctypes.get_errno() if sid < 0 else "", file=sys.stderr, flush=True)
    if sid >= 0:  # 250 values of 15 bits: a stash the next task's child reads back (semctl GETALL)
        print("ESCAPED: a semaphore set outlives the task", file=sys.stderr, flush=True)
"""


def _semaphores(key: int) -> list:
    try:
        lines = Path("/proc/sysvipc/sem").read_text(encoding="ascii").splitlines()[1:]
    except OSError:
        return []
    return [int(line.split()[1]) for line in lines if int(line.split()[0]) == key]


def test_the_fallback_leaves_no_semaphores_behind(unsolved, fallback, tmp_path):
    # the filter refused shmget and msgget but not semget: a set of 250 semaphores (SEMMSL is 32,000 on
    # Linux) made by task 1.1's uid stayed in the host's IPC namespace, readable by any later child
    folder = _copy(unsolved, tmp_path, _KEEP_SEM, key=_SHM_KEY)
    before = _semaphores(_SHM_KEY)
    result = grade(folder, 1, stream=False, **LIMITS)
    left = [s for s in _semaphores(_SHM_KEY) if s not in before]
    for s in left:
        subprocess.run(["ipcrm", "-s", str(s)], capture_output=True)
    assert "semget" in result.output, result.output
    assert "ESCAPED" not in result.output, result.output
    assert not left, "a System V semaphore set of the task outlived it"


_UNLINKED = """
import os, sys


def exp(x):  # files in /dev/shm (memory) written, then unlinked while open: no walk of a folder finds them
    fds, held = [], 0
    for n in range(20):
        try:
            fd = os.open(f"/dev/shm/minae-hold-{{os.getpid()}}-{{n}}", os.O_CREAT | os.O_RDWR, 0o600)
            os.unlink(f"/dev/shm/minae-hold-{{os.getpid()}}-{{n}}")
            for _ in range(16):
                os.write(fd, b"x" * (1 << 20))
        except OSError as e:
            print("stopped:", e, file=sys.stderr, flush=True)
            break
        fds.append(fd)
        held += 16
    print("held", held, "MB", file=sys.stderr, flush=True)
    if held > 256:
        print("ESCAPED: the watchdog saw none of it", file=sys.stderr, flush=True)
"""


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="no /dev/shm")
def test_unlinked_files_count_under_the_fallbacks_watchdog(unsolved, fallback, tmp_path, monkeypatch):
    # the watchdog summed the task's resident memory and the files its uid owns in the shared folders: a file
    # in /dev/shm unlinked while open is in neither (320 MB held under a 256 MB total, 64 files of 16 MB per
    # process could be)
    monkeypatch.setenv("MINAE_TOTALS", "watchdog")
    folder = _copy(unsolved, tmp_path, _UNLINKED)
    result = grade(folder, 1, stream=False, limits={"memory": 256 * 2**20}, **LIMITS)
    assert "held" in result.output or "limit" in result.table(), result.output  # the attack ran
    assert "ESCAPED" not in result.output, result.output


_SHARED_ANON = """
import mmap, os, signal, sys, time


def exp(x):  # MAP_SHARED | MAP_ANONYMOUS: a forked child keeps the mappings untouched (no resident pages), the
    # parent fills one 32 MB mapping at a time and unmaps it: 320 MB stay in the kernel's shmem, in no
    # process's resident memory (the parent's never passes 32 MB)
    maps = [mmap.mmap(-1, 32 << 20, flags=mmap.MAP_SHARED) for _ in range(10)]
    pid = os.fork()
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    for m in maps:
        for i in range(0, 32 << 20, 1 << 20):
            m[i : i + (1 << 20)] = b"x" * (1 << 20)
        m.close()
    print("held 320 MB", file=sys.stderr, flush=True)
    time.sleep(1.5)  # the watchdog looks every 0.1 s
    print("ESCAPED: the watchdog saw none of it", file=sys.stderr, flush=True)
    os.kill(pid, signal.SIGKILL)
"""


@pytest.mark.parametrize("sandbox_", ["bwrap", "user"])
def test_shared_anonymous_memory_counts_under_the_watchdog(unsolved, tmp_path, monkeypatch, sandbox_, request):
    monkeypatch.setenv("MINAE_TOTALS", "watchdog")
    if sandbox_ == "user":
        request.getfixturevalue("fallback")
    elif sandbox._bwrap_ok() is not None:
        pytest.skip("no bubblewrap sandbox here")
    folder = _copy(unsolved, tmp_path, _SHARED_ANON)
    result = grade(folder, 1, stream=False, limits={"memory": 256 * 2**20}, **LIMITS)
    assert "ESCAPED" not in result.output, result.output


_DEEP_STASH = """
import os, sys


def exp(x):  # a folder every uid may write, five levels below / under folders that are not: the cleanup's
    # search for shared folders stopped at four levels, so a file left there outlived the task
    try:
        with open({path!r} + "/stash", "w") as f:
            f.write("task 1.1's stand-in")
        print("ESCAPED: a file left in", {path!r}, file=sys.stderr, flush=True)
    except OSError as e:
        print("refused:", e, file=sys.stderr, flush=True)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="a folder below /var/lib is made for the test as root")
def test_no_file_outlives_the_task_in_a_deep_shared_folder(unsolved, fallback, tmp_path):
    top = Path(f"/var/lib/minae-attack-{os.getpid()}")
    deep = top / "a" / "b"
    deep.mkdir(parents=True)
    deep.chmod(0o1777)
    try:
        folder = _copy(unsolved, tmp_path, _DEEP_STASH, path=str(deep))
        result = grade(folder, 1, stream=False, **LIMITS)
        left = list(deep.iterdir())
        assert "refused" in result.output or "ESCAPED" in result.output, result.output  # the attack ran
        assert not left, f"{left} outlived the task"
    finally:
        shutil.rmtree(top, ignore_errors=True)

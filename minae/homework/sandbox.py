"""Where a student's code runs when it is graded: an OS sandbox that sees only its copy and the Python runtime.

Three modes, the first that works (``MINAE_SANDBOX=bwrap|user|none`` forces one):

- ``bwrap`` (bubblewrap, Linux): a fresh mount namespace holding the system's
  libraries and the interpreter (read-only), its standard library, NumPy alone
  of the installed packages (the site-packages folders are hidden under empty
  tmpfs: no ``.pth`` file, no editable finder, no teacher's minae), the staged
  copy (read-only, at ``/submission``) and a private tmpfs ``/tmp``. No network
  (every namespace unshared), its own PID namespace whose init dies with the
  grader (``--die-with-parent``), so no process outlives the child; a new
  session (no terminal to write into); no capabilities, ``no_new_privs``. Its
  uid is unprivileged *for the kernel*, not only inside the sandbox: a root
  grader runs bubblewrap without a user namespace and the child as a fresh
  uid of its own (no account, no file, used by no other process), because a
  uid that maps to root keeps root's rights outside the namespaces (global
  ``/proc/sys`` settings such as ``kernel.core_pattern`` are writable by
  root's uid without any capability, and root is exempt from
  ``RLIMIT_NPROC``); a grader that is not root runs bubblewrap in a user
  namespace whose uid 65534 is the grader's own (unprivileged) uid.
- ``user``: where bubblewrap cannot run but the grader is root: the child runs
  as a fresh uid and gid of its own (no account, used by no other process, so
  that its processes and files are told apart from everyone's, grade-all's
  other children included) with no capabilities and ``no_new_privs``, in a
  scratch folder of its own (a tmpfs of ``SCRATCH`` bytes mounted for the task
  where the grader may mount, removed after it). It runs the grader's
  interpreter when that uid can reach it, else the system's ``python3`` with
  its NumPy (``MINAE_SANDBOX_PYTHON`` names another); it is used only after a
  probe run as such a uid shows the interpreter and NumPy reachable and the
  teacher's files (the reference package, the results folder) neither
  readable nor writable; every process of the uid is killed, and every file
  it left in the shared temporary folders removed, when the child ends,
  before any result is written.
- ``none``: the child is an ordinary process of the grader's user. Enough for a
  student checking their own copy; grading someone else's copy refuses it unless
  the teacher says ``--no-sandbox``.

In every mode the child gets hard resource limits (set in the child before the
student's code is imported, soft = hard so that it cannot raise them): address
space, file size, CPU time, open files, processes (the last is what stops a
fork bomb in the ``user`` mode; bwrap's PID namespace ends them all anyway), and a
seccomp filter (``_child.confine``, before the student's code is imported) that refuses
what no task needs and what would reach past these bounds: memory no process's resident
pages show (System V and POSIX IPC, memfd, shared mappings), nested namespaces, ptrace,
sockets (the ``user`` mode shares the host's network), io_uring, bpf, keyrings; and, where
the kernel has Landlock, any change to files outside the task's scratch.

Those are per process; ``TOTALS`` bounds all the task's processes together
(``memory``: bytes resident, ``processes``: how many at once). Where the grader
can make a cgroup (root, a writable memory and pids hierarchy, v1 or v2) the
task gets its own, entered before the child's first instruction (the
command starts with a shell line that writes its own pid into it, then execs
the sandbox) and killed whole at the end: the kernel enforces both totals
(swap included where accounted). Elsewhere (``MINAE_TOTALS=watchdog`` forces
it) a watchdog thread of the grader sums every 100 ms the resident memory of
the task's processes (the child's process tree, and every process of the
task's own uid) and kills the task when a total passes its cap. Either way a
task stopped for a total fails with a message that names the limit.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

__all__ = ["mode", "why_not", "stage", "start", "LIMITS", "TOTALS", "SandboxUnavailable"]

LIMITS = {"as": 2 * 2**30, "fsize": 16 * 2**20, "nofile": 64, "nproc": 64, "core": 0}
TOTALS = {"memory": 2 * 2**30, "processes": 64}  # all of a task's processes together (cgroup or watchdog)
SCRATCH = 64 * 2**20  # bytes of the sandbox's scratch (bwrap's /tmp, the user mode's folder: tmpfs, memory)
SCRATCH_FILES = 10_000  # files and folders in it: each is an inode of kernel memory, outside any byte count
MAX_FILES = 2000  # files of a staged copy's package
MAX_BYTES = 64 * 2**20  # bytes of a staged copy's package
MAX_DIRS = 200  # folders of a staged copy's package (the library has about ten)
MAX_DEPTH = 8  # folders nested below the package's own (the library's deepest is 2)
SUBMISSION = "/submission"  # where the copy is seen in the bwrap sandbox
WATCH_EVERY = 0.1  # seconds between two looks of the watchdog
ISSUED: set = set()  # the fresh uids this grader gave its tasks (for the tests' checks that none is left)
SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm")  # where any uid can write: the user mode's leftovers are removed
SHARED_DEPTH = 4  # how deep below / the user mode looks for more such folders (/run/lock, /dev/mqueue …)


class SandboxUnavailable(RuntimeError):
    pass


# -------------------------------------------------------------------- staging ---
def stage(root: Path, into: Path) -> Path:
    """Copy the copy's ``minae`` package into ``into``/minae: regular files only, bounded, no link leaving it.

    The package is walked first and nothing is copied unless all of it is within the caps (``MAX_FILES``
    files, ``MAX_BYTES`` bytes, ``MAX_DIRS`` folders, ``MAX_DEPTH`` folders deep): the walk stops at the
    first entry past a cap, so a copy of 100,000 empty folders costs no more than one past the cap.
    A symlink whose target is outside ``root`` is refused, at any depth (it would reach the teacher's
    files where the sandbox shows them, or in the ``user`` mode); one inside is copied as the file it
    names. Byte-compiled files and the copy's own ``minae/homework`` (never run) stay out.
    """
    root = Path(root).resolve()
    package = root / "minae"
    if package.is_symlink():  # the package itself is checked as any link in it (os.walk follows its top)
        package = _inside(package, root)
    folders, files, size = [], [], 0

    def refuse(what: str, path: Path):
        raise ValueError(f"the copy's minae package has {what}: {_shown(path, root)} is past the limit (refused)")

    for folder, dirs, names in os.walk(package, followlinks=False):
        rel = Path(folder).relative_to(package)
        if len(rel.parts) > MAX_DEPTH:
            refuse(f"folders nested more than {MAX_DEPTH} deep", Path(folder))
        folders.append(rel)
        if len(folders) > MAX_DIRS:
            refuse(f"more than {MAX_DIRS} folders", Path(folder))
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not (rel == Path(".") and d == "homework"))
        for d in list(dirs):
            path = Path(folder) / d
            if path.is_symlink():
                _inside(path, root)
                dirs.remove(d)  # a linked folder inside the copy: its files are staged where they are
        for name in sorted(names):
            path = Path(folder) / name
            if name.endswith((".pyc", ".pyo")) or name == "__pycache__":  # a file where the bytecode's folder goes
                continue
            source = _inside(path, root) if path.is_symlink() else path
            if not source.is_file():
                continue
            files.append((source, rel / name))
            size += source.stat().st_size
            if len(files) > MAX_FILES:
                refuse(f"more than {MAX_FILES} files", path)
            if size > MAX_BYTES:
                refuse(f"more than {MAX_BYTES >> 20} MB of files", path)
    into.mkdir(parents=True, exist_ok=True)
    for rel in folders:
        (into / "minae" / rel).mkdir(parents=True, exist_ok=True)
    for source, rel in files:
        shutil.copyfile(source, into / "minae" / rel)
    _bytecode(into / "minae")
    for path in [into, *into.rglob("*")]:  # readable by the sandbox's user, writable by nobody else
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return into


_PYC: dict = {}  # (the file's path in the package, its bytes' SHA-256) -> the reference's bytecode for it


def _bytecode(package: Path) -> None:
    """Bytecode, next to each staged file that is byte for byte the reference's file of that name.

    The child compiles what it imports (it writes no bytecode, and a copy's own ``__pycache__`` is never
    staged: its bytecode need not be its source's); most of a copy's files are the reference's unchanged,
    and compiling them at every start cost about half a second. Their bytecode is compiled here from the
    reference's own text (never from the student's), once per grader process, in the checked-hash form:
    the child's import compares the source's hash with the one recorded and compiles the source whenever
    they differ; an interpreter of another version ignores the files (another cache tag or magic number).
    """
    import hashlib
    import importlib.util
    from importlib import _bootstrap_external

    own = Path(__file__).resolve().parents[1]
    for source in package.rglob("*.py"):
        rel = source.relative_to(package)
        try:
            data = source.read_bytes()
            if (own / rel).read_bytes() != data:
                continue
        except OSError:
            continue
        key = (str(rel), hashlib.sha256(data).digest())
        try:
            if key not in _PYC:
                code = compile(data, str(own / rel), "exec", dont_inherit=True)
                source_hash = importlib.util.source_hash(data)
                _PYC[key] = bytes(_bootstrap_external._code_to_hash_pyc(code, source_hash, True))
            target = Path(importlib.util.cache_from_source(str(source)))
        except (AttributeError, NotImplementedError, SyntaxError, ValueError):
            return  # an interpreter without these (a speed-up only: the child compiles the sources itself)
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(_PYC[key])


def _shown(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def _inside(path: Path, root: Path) -> Path:
    try:
        target = path.resolve()
    except (RuntimeError, OSError) as e:  # a loop of links (RuntimeError before Python 3.13, ELOOP after)
        raise ValueError(f"{path.relative_to(root)} is a symbolic link that never ends (a loop): refused") from e
    if not target.is_relative_to(root):
        raise ValueError(f"{path.relative_to(root)} is a symbolic link leaving the submission (to {target}): refused")
    return target


# ---------------------------------------------------------------- the modes ---
def _runtime() -> dict:
    import site

    from ..backend import np as numpy

    exe = os.path.realpath(sys.executable)
    prefix = os.path.realpath(sys.base_prefix)
    sites = {os.path.realpath(p) for p in [*site.getsitepackages(), site.getusersitepackages()] if os.path.isdir(p)}
    sites |= {os.path.realpath(p) for p in sys.path if p.endswith(("site-packages", "dist-packages"))}
    numpy_dir = os.path.dirname(os.path.realpath(numpy.__file__))
    return {"exe": exe, "prefix": prefix, "sites": sorted(sites), "numpy": numpy_dir}


_PROBE = "import sys; sys.path.insert(0, '/sandbox/site'); import numpy; open('/probe/owner', 'w').close()"


@functools.lru_cache(maxsize=None)
def _bwrap_ok() -> str | None:
    """None when bubblewrap can build the sandbox here, else why not.

    The probe also shows whose the child is for the kernel: it creates a file, whose owner the grader
    reads in its own namespace and maps to the kernel's uid (its uid_map). Never from inside: bubblewrap
    nests a second user namespace under a non-root grader (uid 65534 -> 0 -> the grader's uid), so the
    child's own uid_map names 0, the intermediate namespace's root, which is the grader's ordinary uid.
    """
    import tempfile

    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    with tempfile.TemporaryDirectory(prefix="minae-probe-") as folder:
        os.chmod(folder, 0o1777)  # writable by the child, whichever uid it runs as
        try:
            probe = [_runtime()["exe"], "-I", "-S", "-c", _PROBE]
            proc = subprocess.run(
                [*_bwrap_args(Path("/nonexistent-copy"), probe=folder), *probe],
                capture_output=True,
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"bubblewrap could not start ({e})"
        if proc.returncode != 0:
            return "bubblewrap cannot build the sandbox here: " + proc.stderr.decode(errors="replace").strip()[:300]
        if _kernel_uid(os.stat(os.path.join(folder, "owner")).st_uid) == 0:
            return "bubblewrap runs the child as root (for the kernel)"
    return None


def _bwrap_args(copy: Path, probe: str | None = None, info_fd: int | None = None, uid: int | None = None) -> list:
    """bubblewrap's command line for the copy ``copy``; ``probe``: a folder the probe writes to (no copy);
    ``info_fd``: where bubblewrap writes the PID of the sandbox's init (``_init_pidfd``); ``uid``: the child's
    fresh uid when the grader is root (one is chosen when None)."""
    rt = _runtime()
    args = ["bwrap", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if info_fd is not None:
        args += ["--info-fd", str(info_fd)]
    args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if _kernel_root():
        # no user namespace: its uid 65534 would be root outside it. The child keeps only what setpriv needs
        # to become the fresh unprivileged uid (see _fresh_id), and setpriv gives that up too
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    else:  # a user namespace whose uid 65534 is the grader's own, unprivileged, uid
        args += ["--unshare-user", "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL"]
    for top in ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    if os.path.isfile("/etc/ld.so.cache"):
        args += [*_parents("/etc/ld.so.cache"), "--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    if not rt["prefix"].startswith("/usr/"):
        args += [*_parents(rt["prefix"]), "--ro-bind", rt["prefix"], rt["prefix"]]
    exe_dir = os.path.dirname(rt["exe"])
    if not exe_dir.startswith(("/usr/", rt["prefix"] + "/")):
        args += [*_parents(exe_dir), "--ro-bind", exe_dir, exe_dir]
    # hidden under empty folders wherever a bind above would show them: the installed packages (only NumPy is
    # put back, below) and the grader's own project (the reference, its tests), e.g. a project under /usr/src
    bound = [args[i + 1] for i, a in enumerate(args) if a == "--ro-bind"]
    others = [  # every Python's installed packages under those binds, not only this interpreter's
        str(d) for b in bound for pattern in ("lib*/python*/*-packages", "local/lib*/python*/*-packages")
        for d in sorted(Path(b).glob(pattern)) if d.is_dir() and not d.is_symlink()
    ]  # fmt: skip
    for hidden in dict.fromkeys([*rt["sites"], *others, str(Path(__file__).resolve().parents[2])]):
        if any(hidden == b or hidden.startswith(b.rstrip("/") + "/") for b in bound):
            args += ["--tmpfs", hidden, "--remount-ro", hidden]
    numpy_dir = rt["numpy"]
    args += [*_parents("/sandbox/site/numpy"), "--ro-bind", numpy_dir, "/sandbox/site/numpy"]
    if os.path.isdir(numpy_dir + ".libs"):  # the wheel's bundled libraries, found relative to numpy's
        args += ["--ro-bind", numpy_dir + ".libs", "/sandbox/site/numpy.libs"]
    if probe is None:
        args += ["--ro-bind", str(copy), SUBMISSION]
    else:
        args += ["--bind", probe, "/probe"]
    # /tmp is memory (tmpfs): RLIMIT_FSIZE bounds a file, not how many, so the folder has a size of its own.
    # Every other tmpfs bubblewrap makes (/, /dev, the empty folders that hide packages) is made read-only
    # once built: they have no size, and under a grader that is not root the child is the grader's uid
    # for the kernel, so it owns them and could fill the machine's memory through them
    args += [
        "--size",
        str(SCRATCH),
        "--perms",
        "1777",
        "--tmpfs",
        "/tmp",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--remount-ro",
        "/dev",
        "--remount-ro",
        "/",
        "--chdir",
        "/tmp",
        "--clearenv",
    ]
    for key, value in _env("/tmp").items():
        args += ["--setenv", key, value]
    args += ["--"]
    if _kernel_root():
        uid = _fresh_id() if uid is None else uid
        args += _setpriv(uid, uid)
    return args


def _kernel_root() -> bool:
    """Whether this process's uid is root outside any user namespace (a container's root may be mapped to
    an ordinary uid: a user namespace of its own then maps the sandbox to that ordinary uid, which is safe)."""
    return _kernel_uid(os.geteuid()) == 0


def _kernel_uid(uid: int) -> int | None:
    """``uid`` of this process's user namespace as the parent namespace knows it (its uid_map: inside,
    outside, count); None when unmapped. Where the map cannot be read, the uid itself."""
    try:
        with open("/proc/self/uid_map", encoding="ascii") as f:
            for line in f:
                inside, outside, count = map(int, line.split())
                if inside <= uid < inside + count:
                    return outside + uid - inside
        return None
    except (OSError, ValueError):
        return uid


def _parents(path: str) -> list:
    """bwrap's options that make the folders above ``path`` traversable (0755) by the sandbox's uid.

    bubblewrap gives the folders it creates above a bind the modes of the host's (``/root`` is 0700), which
    an unprivileged uid cannot pass through.
    """
    out, parts = [], Path(path).parts[1:-1]
    for k in range(1, len(parts) + 1):
        out += ["--perms", "0755", "--dir", "/" + "/".join(parts[:k])]
    return out


def _fresh_id() -> int:
    """A uid (and gid, the same number) that no account or group has, drawn from 2**30 above 2**24.

    The task's own, for the kernel: ``RLIMIT_NPROC`` (counted per uid) counts this task's processes alone,
    its processes and files are told apart from everyone's (the watchdog's sums, the cleanup after it),
    and nothing it leaves behind could belong to anyone else.
    """
    import grp
    import pwd
    import secrets

    while True:
        uid = 2**24 + secrets.randbelow(2**30)
        try:
            pwd.getpwuid(uid)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(uid)
            continue
        except KeyError:
            ISSUED.add(uid)
            return uid


def _env(home: str) -> dict:
    return {"HOME": home, "TMPDIR": home, "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg",
            "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "LANG": "C.UTF-8"}  # fmt: skip


def _setpriv(uid: int, gid: int) -> list:
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs", "--"]  # fmt: skip


_USER_PROBE = """
import json, os, sys
out = {"numpy": None, "open": []}
if sys.argv[1]:
    sys.path.insert(0, sys.argv[1])
try:
    import numpy
    out["numpy"] = os.path.dirname(os.path.realpath(numpy.__file__))
except Exception:
    pass
out["open"] = [p for p in sys.argv[2:] if os.access(p, os.R_OK) or os.access(p, os.W_OK)]
print(json.dumps(out))
"""


@functools.lru_cache(maxsize=None)
def _user_runtime(secrets_: tuple) -> dict | str:
    """The interpreter and NumPy the ``user`` mode runs (``{"exe", "numpy"}``), or why the mode cannot isolate.

    Tried as a fresh uid, in order: ``MINAE_SANDBOX_PYTHON`` alone when it is set; else the grader's own
    interpreter (with the grader's NumPy), then the system's ``python3`` (with its own NumPy). The first
    that runs and imports NumPy is used, provided the teacher's paths ``secrets_`` are neither readable
    nor writable by that uid.
    """
    if os.geteuid() != 0:
        return "the grader is not root (it cannot run the student's code as another user)"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is missing"
    rt = _runtime()
    forced = os.environ.get("MINAE_SANDBOX_PYTHON", "").strip()
    if forced:
        candidates = [(forced, "")]
    else:
        system = shutil.which("python3", path="/usr/bin:/bin")
        candidates = [(rt["exe"], os.path.dirname(rt["numpy"]))]
        if system and os.path.realpath(system) != rt["exe"]:
            candidates.append((os.path.realpath(system), ""))
    why = []
    for exe, hint in candidates:
        uid = _fresh_id()
        flags = ["-I", "-S"] if hint else ["-I"]  # another Python finds its own NumPy where it installs it
        try:
            proc = subprocess.run(
                [*_setpriv(uid, uid), exe, *flags, "-c", _USER_PROBE, hint, *secrets_],
                capture_output=True,
                timeout=60,
                env=_env("/"),
                cwd="/",
            )
            found = json.loads(proc.stdout.decode() or "null")
        except (OSError, subprocess.TimeoutExpired, ValueError) as e:
            why.append(f"{exe}: {type(e).__name__}")
            continue
        finally:
            kill_all_of(uid)
        if not isinstance(found, dict):
            why.append(f"{exe} does not run as another user ({proc.stderr.decode(errors='replace')[-120:].strip()})")
            continue
        if found["open"]:
            return (
                f"another user could read or write {found['open'][0]} (the grader's files, the results or the copy "
                "graded: the student's code would run as another user and reach it): make it private "
                "(chmod o-rwx) or install bubblewrap"
            )
        if not found["numpy"]:
            why.append(f"{exe} has no NumPy another user can import")
            continue
        return {"exe": exe, "numpy": found["numpy"]}
    return "no Python that another user can run with NumPy: " + "; ".join(why)


def _user_ok(secrets_: tuple) -> str | None:
    """None when the ``user`` mode isolates here, else why not."""
    found = _user_runtime(secrets_)
    return found if isinstance(found, str) else None


def teacher_paths(extra=()) -> tuple:
    """What the student's code must not reach: the grader's package (the reference and its tests), results."""
    own = Path(__file__).resolve().parents[1]
    return tuple(str(p) for p in (own, own / "homework" / "tests", *extra))


def mode(extra_secrets=()) -> str:
    """The sandbox this grader uses: "bwrap", "user" or "none" (``MINAE_SANDBOX`` forces one that works)."""
    forced = os.environ.get("MINAE_SANDBOX", "").strip().lower()
    if forced in ("bwrap", "user", "none"):
        if forced == "bwrap" and _bwrap_ok() is not None:
            raise SandboxUnavailable(f"MINAE_SANDBOX=bwrap, but {_bwrap_ok()}")
        if forced == "user" and _user_ok(teacher_paths(extra_secrets)) is not None:
            raise SandboxUnavailable(f"MINAE_SANDBOX=user, but {_user_ok(teacher_paths(extra_secrets))}")
        return forced
    if sys.platform.startswith("linux"):
        if _bwrap_ok() is None:
            return "bwrap"
        if _user_ok(teacher_paths(extra_secrets)) is None:
            return "user"
    return "none"


def why_not(extra_secrets=()) -> str:
    """Why no sandbox can run here (for the refusal's message)."""
    if not sys.platform.startswith("linux"):
        return f"no sandbox on {sys.platform} (bubblewrap is Linux's)"
    return f"{_bwrap_ok()}; and the fallback user: {_user_ok(teacher_paths(extra_secrets))}"


# ---------------------------------------------------------------- the totals ---
def _mounts() -> list:
    """(mount point, root in its hierarchy, fstype, super options) of each cgroup mount (/proc/self/mountinfo)."""
    out = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields, tail = left.split(), right.split()
                if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
                    point = fields[4].replace("\\040", " ")
                    out.append((point, fields[3], tail[0], set(tail[2].split(","))))
    except OSError:
        pass
    return out


def _own_cgroups() -> dict:
    """controller (or "" for cgroup v2) -> this process's cgroup path, from /proc/self/cgroup."""
    out = {}
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for c in controllers.split(",") if controllers else [""]:
                    out[c] = path
    except (OSError, ValueError):
        pass
    return out


def _under(point: str, root: str, path: str) -> str:
    rel = path[len(root) :] if root != "/" and path.startswith(root) else path
    return os.path.join(point, rel.lstrip("/"))


class Cgroup:
    """A task's own cgroup: its memory (swap included where accounted) and its number of tasks bounded.

    v2 where the unified hierarchy holds the memory and pids controllers, else v1's memory and pids
    hierarchies. ``procs`` are the files a process writes its pid into to enter it.
    """

    def __init__(self, dirs: list, version: int, memory: int):
        self.dirs, self.version, self.memory = dirs, version, memory
        self.procs = [os.path.join(d, "cgroup.procs") for d in dirs]

    @classmethod
    def make(cls, memory: int, processes: int) -> Cgroup | None:
        """The task's cgroup, or None where none can be made here (not root, no writable hierarchy)."""
        if os.environ.get("MINAE_TOTALS", "").strip().lower() == "watchdog" or not sys.platform.startswith("linux"):
            return None
        import secrets

        name = f"minae-task-{os.getpid()}-{secrets.token_hex(4)}"
        for attempt in (cls._v2, cls._v1):
            made = []
            try:
                group = attempt(name, memory, processes, made)
                if group is not None:
                    return group
            except (OSError, ValueError):
                pass
            for d in reversed(made):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        return None

    @classmethod
    @staticmethod
    def _sweep(parent: str):
        """Remove the empty cgroups that graders no longer running left in ``parent`` (one killed mid-task)."""
        try:
            names = os.listdir(parent)
        except OSError:
            return
        for name in names:
            parts = name.split("-")
            if len(parts) == 4 and parts[:2] == ["minae", "task"] and parts[2].isdigit():
                if not os.path.exists(f"/proc/{parts[2]}"):
                    try:
                        os.rmdir(os.path.join(parent, name))
                    except OSError:
                        pass

    @classmethod
    def _v2(cls, name, memory, processes, made):
        own = _own_cgroups().get("")
        point = next((m for m in _mounts() if m[2] == "cgroup2"), None)
        if own is None or point is None:
            return None
        parent = _under(point[0], point[1], own)
        with open(os.path.join(parent, "cgroup.controllers"), encoding="ascii") as f:
            if not {"memory", "pids"} <= set(f.read().split()):
                return None
        with open(os.path.join(parent, "cgroup.subtree_control"), encoding="ascii") as f:
            enabled = set(f.read().split())
        if not {"memory", "pids"} <= enabled:  # fails where the parent holds processes (v2's rule): no cgroup
            with open(os.path.join(parent, "cgroup.subtree_control"), "w", encoding="ascii") as f:
                f.write("+memory +pids")
        cls._sweep(parent)
        d = os.path.join(parent, name)
        os.mkdir(d)
        made.append(d)
        _write(d, "memory.max", memory)
        if os.path.exists(os.path.join(d, "memory.swap.max")):
            _write(d, "memory.swap.max", 0)
        _write(d, "pids.max", processes)
        return cls([d], 2, memory)

    @classmethod
    def _v1(cls, name, memory, processes, made):
        own, mounts, dirs = _own_cgroups(), _mounts(), []
        for controller in ("memory", "pids"):
            point = next((m for m in mounts if m[2] == "cgroup" and controller in m[3]), None)
            if point is None or controller not in own:
                return None
            parent = _under(point[0], point[1], own[controller])
            cls._sweep(parent)
            d = os.path.join(parent, name)
            if d not in dirs:
                os.mkdir(d)
                made.append(d)
                dirs.append(d)
            if controller == "memory":
                _write(d, "memory.limit_in_bytes", memory)
                if os.path.exists(os.path.join(d, "memory.memsw.limit_in_bytes")):  # memory + swap, >= memory
                    _write(d, "memory.memsw.limit_in_bytes", memory)
            else:
                _write(d, "pids.max", processes)
        return cls(dirs, 1, memory)

    def out_of_memory(self) -> bool:
        """Whether the kernel had to kill a process of the task for its memory (or holds one at the limit)."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        for d in self.dirs:
            try:
                with open(os.path.join(d, name), encoding="ascii") as f:
                    for line in f:
                        key, _, value = line.partition(" ")
                        if key in ("oom_kill", "under_oom", "oom") and int(value or 0) > 0:
                            return True
            except (OSError, ValueError):
                continue
        return False

    def pids(self) -> set:
        found = set()
        for path in self.procs:
            try:
                with open(path, encoding="ascii") as f:
                    found |= {int(x) for x in f.read().split()}
            except (OSError, ValueError):
                pass
        return found

    def kill(self):
        """SIGKILL every process in the cgroup until none is left (forks racing the kill included)."""
        if self.version == 2 and os.path.exists(os.path.join(self.dirs[0], "cgroup.kill")):
            try:
                _write(self.dirs[0], "cgroup.kill", 1)
            except OSError:
                pass
        for _ in range(200):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)

    def remove(self):
        self.kill()
        for d in self.dirs:
            for _ in range(200):  # a killed process leaves its cgroup a moment after the signal
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


def _write(folder: str, name: str, value) -> None:
    with open(os.path.join(folder, name), "w", encoding="ascii") as f:
        f.write(str(value))


def _processes() -> dict:
    """pid -> (parent pid, real and effective uids, resident bytes) of every live process, from /proc."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        ppid, uids, rss, dead, threads = 0, (), 0, False, 1
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key == "State":
                dead = value.split()[:1] in (["Z"], ["X"])
            elif key == "PPid":
                ppid = int(value)
            elif key == "Uid":
                uids = tuple(int(u) for u in value.split()[:2])
            elif key == "VmRSS":
                rss = int(value.split()[0]) * 1024
            elif key == "Threads":
                threads = int(value)
        if dead and threads > 1:
            # its main thread ended (pthread_exit) and its others run on: the leader says "zombie" and shows no
            # memory, but the process lives (and outlived a kill that skipped zombies); its threads show it
            rss = _threads_rss(entry)
        elif dead:
            continue  # dead, not yet reaped: it holds no memory and runs nothing
        out[int(entry)] = (ppid, uids, rss)
    return out


def _threads_rss(pid: str) -> int:
    """The resident bytes of process ``pid`` as one of its live threads reports them (they share them)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            continue
    return 0


def task_processes(root_pid: int, uid: int | None, table: dict | None = None) -> dict:
    """pid -> resident bytes of a task's processes: ``root_pid``'s descendants and every process of ``uid``."""
    table = _processes() if table is None else table
    children = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {}, [root_pid] if root_pid in table else []
    while todo:
        pid = todo.pop()
        if pid not in found:
            found[pid] = table[pid][2]
            todo.extend(children.get(pid, []))
    if uid is not None:
        found.update({pid: rss for pid, (_, uids, rss) in table.items() if uid in uids})
    return found


class Guard:
    """The task's totals: its cgroup's verdict, or a watchdog thread that sums its processes' memory.

    ``reason`` is why the task was stopped for a total (None while it was not); ``stopped()`` also asks
    the cgroup, whose kernel may have killed a process before the grader looked.
    """

    def __init__(self, totals: dict, cgroup: Cgroup | None, uid: int | None, scratch: Path | None = None):
        self.totals, self.cgroup, self.uid, self.scratch = totals, cgroup, uid, scratch
        self.tmpfs: str | None = None  # the sandbox's own tmpfs, as the grader reaches it (/proc/<init>/root/tmp)
        self.shared = False  # whether the task's uid can write the host's shared folders (the user mode)
        self.reason: str | None = None
        self._done = threading.Event()
        self._thread = None

    def watch(self, child: Child):
        self._thread = threading.Thread(target=self._run, args=(child,), daemon=True, name="minae-watchdog")
        self._thread.start()

    def _memory_text(self):
        return f"the task's processes together used more than {self.totals['memory'] >> 20} MB of memory (its limit)"

    def _look(self, root_pid: int, running: bool = True) -> str | None:
        if self.cgroup is not None:  # the kernel holds both totals; the grader only reads its verdict
            if self.cgroup.out_of_memory():
                return self._memory_text()
        else:
            procs = task_processes(root_pid, self.uid)
            if sum(procs.values()) > self.totals["memory"]:
                return self._memory_text()
            if len(procs) > self.totals["processes"]:
                return f"the task ran more than {self.totals['processes']} processes at once (its limit)"
        if self.tmpfs is not None and running:  # bubblewrap's outer process lives while its init does
            # a tmpfs bounds its bytes (--size) but not its inodes (bubblewrap sets no nr_inodes): empty files,
            # about 1 kB of kernel memory each, that no process's resident memory shows (40,000 a second)
            try:
                st = os.statvfs(self.tmpfs)
                if st.f_files - st.f_ffree > SCRATCH_FILES:
                    return self._files_text()
            except OSError:
                pass
        if self.shared or self.scratch is not None:
            # the scratch where no tmpfs bounds it, and what the task's uid wrote where every uid may write
            used = _usage(self.scratch, most=SCRATCH_FILES) if self.scratch is not None else 0
            if self.shared and self.uid is not None:
                used += sum(_usage(top, owner=self.uid, most=SCRATCH_FILES) for top in shared_folders())
                used += _unlinked_held(task_processes(root_pid, self.uid))
            if used >= 2**62:  # _usage's word for more entries than it counts
                return self._files_text()
            if used > SCRATCH:
                return f"the task wrote more than {SCRATCH >> 20} MB of files (its limit)"
        return None

    @staticmethod
    def _files_text():
        return f"the task made more than {SCRATCH_FILES} files (its limit)"

    def _run(self, child):
        while not self._done.wait(WATCH_EVERY):
            if child.proc.poll() is not None and self.cgroup is None and self.uid is None:
                return
            reason = self._look(child.proc.pid, child.proc.poll() is None)
            if reason is not None:
                self.reason = reason
                child.kill()
                return

    def stopped(self) -> str | None:
        if self.reason is None and self.cgroup is not None and self.cgroup.out_of_memory():
            self.reason = self._memory_text()
        return self.reason

    def stop(self):
        self._done.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


def _usage(folder, owner: int | None = None, most: int = 100_000) -> int:
    """Bytes allocated under ``folder`` (with ``owner``: in its entries that uid owns, whole).

    More than ``most`` entries count as past any cap (the walk stops there).
    """
    total, seen = 0, 0
    try:
        tops = [e.path for e in os.scandir(folder)] if owner is None else list(_owned(folder, owner))
    except OSError:
        return 0
    for top in tops:
        try:
            total += os.lstat(top).st_blocks * 512
        except OSError:
            continue
        for here, dirs, names in os.walk(top):
            for name in dirs + names:
                seen += 1
                if seen > most:
                    return 2**62
                try:
                    total += os.lstat(os.path.join(here, name)).st_blocks * 512
                except OSError:
                    pass
    return total


def _unlinked_held(pids) -> int:
    """Bytes of the files that the processes ``pids`` hold open or mapped and no folder's walk finds any more
    (unlinked: no name left, st_nlink 0), each file once.

    A file in /dev/shm written and then unlinked while open is memory that neither the processes' resident
    pages nor ``_usage`` of the shared folders show (64 of 16 MB each per process): it lives as long as an
    open descriptor or a mapping of it (``/proc/<pid>/map_files``, which root may stat) does.
    """
    import stat

    seen, total = set(), 0
    for pid in pids:
        links = []
        try:
            links += [f"/proc/{pid}/fd/{n}" for n in os.listdir(f"/proc/{pid}/fd")]
            with open(f"/proc/{pid}/maps", encoding="ascii", errors="replace") as f:
                links += [f"/proc/{pid}/map_files/{line.split()[0]}" for line in f if line.endswith("(deleted)\n")]
        except OSError:
            pass
        for link in links:
            try:
                st = os.stat(link)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_nlink == 0 and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


@functools.lru_cache(maxsize=None)
def shared_folders() -> tuple:
    """The folders where every uid may write (o+w) and that every uid can reach (o+x on the way there):
    ``SHARED_TMP`` and whatever else the host has within ``SHARED_DEPTH`` levels of / (``/run/lock`` on
    Debian): a file the fallback user leaves in any of them would outlive its task, and carry data to the
    next child (a stand-in for another task's code). Found once per grader; /proc and /sys are not walked.
    """
    import stat

    found = [p for p in SHARED_TMP if os.path.isdir(p)]

    def walk(folder, depth):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for e in entries:
            try:
                if e.path in ("/proc", "/sys") or not e.is_dir(follow_symlinks=False):
                    continue
                mode = e.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            if not mode & stat.S_IXOTH:
                continue
            if mode & stat.S_IWOTH:
                found.append(e.path)  # what is below it is _owned's to walk
            elif depth > 1:
                walk(e.path, depth - 1)

    walk("/", SHARED_DEPTH)
    return tuple(dict.fromkeys(os.path.realpath(p) for p in found))


def _owned(folder: str, uid: int, depth: int = 8):
    """The entries under ``folder`` that ``uid`` owns (not below them), looking into the folders there that
    every uid may write (a world-writable folder another uid made in /tmp holds the task's files too)."""
    import stat

    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for e in entries:
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        if st.st_uid == uid:
            yield e.path
        elif depth > 0 and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_IWOTH:
            yield from _owned(e.path, uid, depth - 1)


# ------------------------------------------------------------------ the child ---
class Child:
    """A started child: its process, where the copy is seen from inside, and how to end it and its processes."""

    def __init__(self, proc, root: str, path: list, uid=None, guard=None, scratch=None, mounted=False, init=None):
        self.proc, self.root, self.path, self._uid, self._init = proc, root, path, uid, init
        self.guard = guard if guard is not None else Guard(dict(TOTALS), None, uid)
        self._scratch, self._mounted, self._released = scratch, mounted, False

    def stopped(self) -> str | None:
        """Why the task was stopped for one of its totals (memory, processes, scratch), or None."""
        return self.guard.stopped()

    def kill(self):
        """SIGKILL the child and every process of the task (its PID namespace, group, cgroup, uid)."""
        if self._init is not None:  # the PID namespace's init: SIGKILL to it ends every process in it
            try:
                signal.pidfd_send_signal(self._init, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.kill()
        except OSError:
            pass
        if self.guard.cgroup is not None:  # every process of the task is in it, and none can leave it
            self.guard.cgroup.kill()
        elif self._uid is not None:
            kill_all_of(self._uid)

    def end(self):
        """Kill the child and every process of the task, then release the task's cgroup, scratch and files.

        No grace period: the child has nothing left to say (its output is line-buffered, and a verdict
        never depends on how it ends), and waiting for an interpreter to shut down cost a tenth of a second.
        """
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self.kill()
        self.proc.wait()
        if self._init is not None:
            os.close(self._init)
            self._init = None
        self.release()

    def release(self):
        """After the kill: the cgroup removed, the scratch unmounted, the uid's files in shared folders removed."""
        if self._released:
            return
        self._released = True
        self.guard.stop()
        self.stopped()  # the cgroup's verdict read before it goes
        if self.guard.cgroup is not None:
            self.guard.cgroup.remove()
        elif self._uid is not None:
            kill_all_of(self._uid)
        if self._uid is not None and self._scratch is not None:  # the user mode: the host's shared folders
            for top in shared_folders():
                _remove_owned(top, self._uid)
        if self._mounted:
            subprocess.run(["umount", "--lazy", str(self._scratch)], capture_output=True)
        if self._scratch is not None and self._uid is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)


def _remove_owned(top: str, uid: int) -> None:
    """Remove the entries under ``top`` (a folder every uid may write) that ``uid`` owns (``_owned``), with
    what they hold."""
    for path in list(_owned(top, uid)):
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass


def kill_all_of(uid: int, rounds: int = 100) -> None:
    """SIGKILL every process whose real or effective uid is ``uid``, until none is left (forks included)."""
    for _ in range(rounds):
        found = False
        for pid, (_, uids, _) in _processes().items():
            if uid in uids:
                found = True
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if not found:
            return
        time.sleep(0.01)


def _init_pidfd(info: int, timeout: float = 30) -> tuple:
    """A pidfd of the sandbox's init and its PID, from what bubblewrap wrote to ``info`` (closed here);
    (None, PID or None) where there is no pidfd.

    Killing the grader's own child (bubblewrap's outer process, its process group) ends the sandbox only
    through the init's death signal (--die-with-parent), and the init is in a session of its own: under a
    grader that is not root the student's code runs as the init's uid and can ptrace it, clear that signal,
    and outlive its grading. SIGKILL to a PID namespace's init ends every process in it, whatever they did.
    A pidfd, not the number: the number could name another process once the init is gone.
    """
    import json
    import selectors

    data, pid, deadline = b"", None, time.monotonic() + timeout
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(info, selectors.EVENT_READ)
            while pid is None and time.monotonic() < deadline and sel.select(deadline - time.monotonic()):
                chunk = os.read(info, 4096)
                if not chunk:
                    break  # bubblewrap ended before it said (it could not build the sandbox)
                data += chunk
                try:
                    pid = int(json.loads(data)["child-pid"])
                except (ValueError, KeyError, TypeError):
                    continue  # not all of it yet
        return (None if pid is None else os.pidfd_open(pid)), pid
    except (OSError, AttributeError):
        return None, pid  # no pidfd here (before Linux 5.3 or Python 3.9): the death signal alone
    finally:
        os.close(info)


# a shell line run as the grader before the sandbox: it enters the task's cgroup(s), then becomes the sandbox
_ENTER = 'while [ "$1" != -- ]; do echo 0 > "$1" || exit 125; shift; done; shift; exec "$@"'


def start(which: str, staged: Path, scratch: Path, limits: dict, source: str, totals: dict | None = None) -> Child:
    """Start the child server (``source``: ``_child.py``'s text) in sandbox ``which`` for the copy ``staged``.

    ``totals`` (default ``TOTALS``) bounds all of the task's processes together (``memory``, ``processes``).
    """
    totals = dict(TOTALS, **(totals or {}))
    cgroup = Cgroup.make(totals["memory"], totals["processes"])
    enter = ["/bin/sh", "-c", _ENTER, "sh", *cgroup.procs, "--"] if cgroup is not None else []
    popen = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        if which == "bwrap":
            rt = _runtime()
            uid = _fresh_id() if _kernel_root() else None
            info, info_w = os.pipe()  # bubblewrap writes the PID of the namespace's init there
            try:
                command = [*enter, *_bwrap_args(staged, info_fd=info_w, uid=uid), rt["exe"], "-I", "-S", "-c", source]
                proc = subprocess.Popen(command, env=_env("/tmp"), cwd="/", pass_fds=(info_w,), **popen)
            finally:
                os.close(info_w)
            guard = Guard(totals, cgroup, uid)
            pidfd, pid = _init_pidfd(info)
            if pid is not None:  # looked at while the init lives: then the number is still the init's
                guard.tmpfs = f"/proc/{pid}/root/tmp"
            child = Child(proc, SUBMISSION, [SUBMISSION, "/sandbox/site"], uid, guard, init=pidfd)
        elif which == "user":
            found = _user_runtime(teacher_paths())
            if isinstance(found, str):
                raise SandboxUnavailable(found)
            uid = _fresh_id()
            _grant(staged, uid)
            site = _numpy_site(scratch.parent / "site", found["numpy"])
            scratch.mkdir(exist_ok=True)  # afresh for each child: the last one's was removed with it
            os.chmod(scratch.parent, 0o711)
            mounted = _mount_scratch(scratch, uid)
            os.chown(scratch, uid, uid)
            os.chmod(scratch, 0o700)
            command = [*enter, *_setpriv(uid, uid), found["exe"], "-I", "-S", "-c", source]
            proc = subprocess.Popen(command, env=_env(str(scratch)), cwd=scratch, **popen)
            guard = Guard(totals, cgroup, uid, None if mounted else scratch)
            guard.shared = True
            child = Child(proc, str(staged), [str(staged), site], uid, guard, scratch, mounted)
        else:
            rt = _runtime()
            site = _numpy_site(scratch.parent / "site", rt["numpy"])
            command = [*enter, rt["exe"], "-I", "-S", "-c", source]
            proc = subprocess.Popen(command, env=_env(str(scratch)), cwd=scratch, **popen)
            child = Child(proc, str(staged), [str(staged), site], None, Guard(totals, cgroup, None))
    except BaseException:
        if cgroup is not None:
            cgroup.remove()
        raise
    child.guard.watch(child)
    return child


def _grant(staged: Path, gid: int) -> None:
    """The staged copy readable by the group ``gid`` (the task's own) alone: not by grade-all's other tasks,
    which in the user mode share the host's file system (/tmp is listed by all); writable by none of them."""
    for path in [staged, *staged.rglob("*")]:
        os.chown(path, 0, gid, follow_symlinks=False)
        os.chmod(path, 0o750 if path.is_dir() else 0o640)


def _numpy_site(site: Path, numpy_dir: str) -> str:
    """A folder holding NumPy alone of the installed packages (by links), for the child's path."""
    site.mkdir(exist_ok=True)
    for name in ("numpy", "numpy.libs"):
        target = os.path.join(os.path.dirname(numpy_dir), name)
        if os.path.isdir(target) and not (site / name).exists():
            os.symlink(target, site / name)
    os.chmod(site, 0o755)
    return str(site)


def _mount_scratch(scratch: Path, uid: int) -> bool:
    """A tmpfs of ``SCRATCH`` bytes on ``scratch``, the uid's own: bounded, and gone when unmounted."""
    if shutil.which("mount") is None:
        return False
    options = f"size={SCRATCH},nr_inodes={SCRATCH_FILES},mode=0700,uid={uid},gid={uid},nosuid,nodev"
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "minae-scratch", str(scratch)], capture_output=True)
    return proc.returncode == 0

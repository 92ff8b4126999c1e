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
  as the unprivileged user ``minae-grader`` (created when missing) with no
  capabilities and ``no_new_privs``, in a scratch folder of its own; it is used
  only after a probe run as that user shows the interpreter and NumPy reachable
  and the teacher's files (the reference package, the results folder) neither
  readable nor writable; every process of that user is killed when a child
  ends, before any result is written.
- ``none``: the child is an ordinary process of the grader's user. Enough for a
  student checking their own copy; grading someone else's copy refuses it unless
  the teacher says ``--no-sandbox``.

In every mode the child gets hard resource limits (set in the child before the
student's code is imported, soft = hard so that it cannot raise them): address
space, file size, CPU time, open files, processes (the last is what stops a
fork bomb in the ``user`` mode; bwrap's PID namespace ends them all anyway).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["mode", "why_not", "stage", "start", "LIMITS", "SandboxUnavailable"]

LIMITS = {"as": 2 * 2**30, "fsize": 16 * 2**20, "nofile": 64, "nproc": 64, "core": 0}
SCRATCH = 64 * 2**20  # bytes of the bwrap sandbox's /tmp (a tmpfs: the machine's memory)
MAX_FILES = 2000  # files of a staged copy's package
MAX_BYTES = 64 * 2**20  # bytes of a staged copy's package
USER = "minae-grader"
SUBMISSION = "/submission"  # where the copy is seen in the bwrap sandbox


class SandboxUnavailable(RuntimeError):
    pass


# -------------------------------------------------------------------- staging ---
def stage(root: Path, into: Path) -> Path:
    """Copy the copy's ``minae`` package into ``into``/minae: regular files only, bounded, no link leaving it.

    A symlink whose target is outside ``root`` is refused (it would reach the teacher's files where the
    sandbox shows them, or in the ``user`` mode); one inside is copied as the file it names. Byte-compiled
    files and the copy's own ``minae/homework`` (never run) stay out.
    """
    root = Path(root).resolve()
    package = root / "minae"
    if package.is_symlink():  # the package itself is checked as any link in it (os.walk follows its top)
        package = _inside(package, root)
    into.mkdir(parents=True, exist_ok=True)
    files, size = 0, 0
    for folder, dirs, names in os.walk(package, followlinks=False):
        rel = Path(folder).relative_to(package)
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not (rel == Path(".") and d == "homework"))
        for d in list(dirs):
            path = Path(folder) / d
            if path.is_symlink():
                _inside(path, root)
                dirs.remove(d)  # a linked folder inside the copy: its files are staged where they are
        (into / "minae" / rel).mkdir(parents=True, exist_ok=True)
        for name in sorted(names):
            path = Path(folder) / name
            if name.endswith((".pyc", ".pyo")):
                continue
            if path.is_symlink():
                path = _inside(path, root)
            if not path.is_file():
                continue
            files += 1
            size += path.stat().st_size
            if files > MAX_FILES or size > MAX_BYTES:
                raise ValueError(f"the copy's minae package is larger than {MAX_FILES} files or {MAX_BYTES >> 20} MB")
            shutil.copyfile(path, into / "minae" / rel / name)
    for path in [into, *into.rglob("*")]:  # readable by the sandbox's user, writable by nobody else
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return into


def _inside(path: Path, root: Path) -> Path:
    target = path.resolve()
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


def _bwrap_args(copy: Path, probe: str | None = None, info_fd: int | None = None) -> list:
    """bubblewrap's command line for the copy ``copy``; ``probe``: a folder the probe writes to (no copy);
    ``info_fd``: where bubblewrap writes the PID of the sandbox's init (``_init_pidfd``)."""
    rt = _runtime()
    args = ["bwrap", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if info_fd is not None:
        args += ["--info-fd", str(info_fd)]
    args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if _kernel_root():
        # no user namespace: its uid 65534 would be root outside it. The child keeps only what setpriv needs
        # to become the fresh unprivileged uid (see _as_fresh_uid), and setpriv gives that up too
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
        args += _as_fresh_uid()
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


def _as_fresh_uid() -> list:
    """setpriv to a uid and gid that no account has, drawn from 2**30 above 2**24: the child's own, for the kernel.

    Its own, so that ``RLIMIT_NPROC`` (counted per uid) counts this child's processes alone, and nothing
    it leaves behind (none can: the PID namespace ends with it) could belong to anyone else.
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
            return _setpriv(uid, uid)


def _env(home: str) -> dict:
    return {"HOME": home, "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "LANG": "C.UTF-8"}  # fmt: skip


def _user_ids():
    import pwd

    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        if os.geteuid() == 0 and shutil.which("useradd"):
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], capture_output=True
            )
        try:
            entry = pwd.getpwnam(USER)
        except KeyError:
            entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def _setpriv(uid: int, gid: int) -> list:
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs", "--"]  # fmt: skip


@functools.lru_cache(maxsize=None)
def _user_ok(secrets_: tuple) -> str | None:
    """None when the ``user`` mode isolates here: the runtime reachable, ``secrets_`` not, by the sandbox user."""
    if os.geteuid() != 0:
        return "the grader is not root (it cannot run the student's code as another user)"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is missing"
    uid, gid = _user_ids()
    code = (
        "import json, os, sys\n"
        "out = {'numpy': True, 'open': []}\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "try:\n    import numpy\nexcept Exception:\n    out['numpy'] = False\n"
        "out['open'] = [p for p in sys.argv[2:] if os.access(p, os.R_OK) or os.access(p, os.W_OK)]\n"
        "print(json.dumps(out))\n"
    )
    rt = _runtime()
    try:
        proc = subprocess.run(
            [*_setpriv(uid, gid), rt["exe"], "-I", "-S", "-c", code, os.path.dirname(rt["numpy"]), *secrets_],
            capture_output=True,
            timeout=60,
            env=_env("/"),
            cwd="/",
        )
        found = json.loads(proc.stdout.decode() or "null")
    except (OSError, subprocess.TimeoutExpired, ValueError) as e:
        return f"the sandbox user cannot run Python here ({type(e).__name__})"
    if not isinstance(found, dict):
        return f"the sandbox user {USER} cannot run this Python: {proc.stderr.decode(errors='replace')[-200:]}"
    if not found["numpy"]:
        return f"the sandbox user {USER} cannot import NumPy from {os.path.dirname(rt['numpy'])}"
    if found["open"]:
        return (
            f"the sandbox user {USER} could read or write {found['open'][0]} (the grader's files): "
            "make it private (chmod o-rwx) or install bubblewrap"
        )
    return None


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


# ------------------------------------------------------------------ the child ---
class Child:
    """A started child: its process, where the copy is seen from inside, and how to end it and its processes."""

    def __init__(self, proc, root: str, path: list, kill_user=None, init=None):
        self.proc, self.root, self.path, self._uid, self._init = proc, root, path, kill_user, init

    def kill(self):
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
        if self._uid is not None:
            kill_all_of(self._uid)

    def end(self):
        """Close the pipes, give the child a moment to leave, then kill whatever is left (every process)."""
        for f in (self.proc.stdin,):
            try:
                f.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        self.kill()
        self.proc.wait()
        if self._init is not None:
            os.close(self._init)
            self._init = None


def kill_all_of(uid: int, rounds: int = 100) -> None:
    """SIGKILL every process whose real or effective uid is ``uid``, until none is left (forks included)."""
    for _ in range(rounds):
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as f:
                    uids = next(line for line in f if line.startswith("Uid:")).split()[1:3]
            except (OSError, StopIteration):
                continue
            if str(uid) in uids:
                found = True
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except OSError:
                    pass
        if not found:
            return
        time.sleep(0.01)


def _init_pidfd(info: int, timeout: float = 30) -> int | None:
    """A pidfd of the sandbox's init, from what bubblewrap wrote to ``info`` (closed here); None if none.

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
        return None if pid is None else os.pidfd_open(pid)
    except (OSError, AttributeError):
        return None  # no pidfd here (before Linux 5.3 or Python 3.9): the death signal alone
    finally:
        os.close(info)


def start(which: str, staged: Path, scratch: Path, limits: dict, source: str) -> Child:
    """Start the child server (``source``: ``_child.py``'s text) in sandbox ``which`` for the copy ``staged``."""
    rt = _runtime()
    command = [rt["exe"], "-I", "-S", "-c", source]
    popen = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    if which == "bwrap":
        info, info_w = os.pipe()  # bubblewrap writes the PID of the namespace's init there
        try:
            args = _bwrap_args(staged, info_fd=info_w)
            proc = subprocess.Popen([*args, *command], env=_env("/tmp"), cwd="/", pass_fds=(info_w,), **popen)
        finally:
            os.close(info_w)
        return Child(proc, SUBMISSION, [SUBMISSION, "/sandbox/site"], None, _init_pidfd(info))
    site = scratch.parent / "site"  # NumPy alone of the installed packages, by links
    site.mkdir(exist_ok=True)
    for name in ("numpy", "numpy.libs"):
        target = os.path.join(os.path.dirname(rt["numpy"]), name)
        if os.path.isdir(target) and not (site / name).exists():
            os.symlink(target, site / name)
    os.chmod(site, 0o755)
    numpy_parent = str(site)
    if which == "user":
        uid, gid = _user_ids()
        os.chmod(scratch.parent, 0o711)
        os.chown(scratch, uid, gid)
        os.chmod(scratch, 0o700)
        kill_all_of(uid)  # nothing of an earlier child of this user is left to meet this one
        proc = subprocess.Popen([*_setpriv(uid, gid), *command], env=_env(str(scratch)), cwd=scratch, **popen)
        return Child(proc, str(staged), [str(staged), numpy_parent], uid)
    proc = subprocess.Popen(command, env=_env(str(scratch)), cwd=scratch, **popen)
    return Child(proc, str(staged), [str(staged), numpy_parent], None)

"""The sandboxed side of grading: it runs the student's functions when asked, and judges nothing.

The grader starts ``python -I -S -c <this file's text>`` inside the sandbox (no
path of the teacher's in its arguments or environment) and talks to it over its
standard input and output, one request, one answer, each a frame::

    8 bytes: the JSON header's length, the raw bytes' length (two little-endian uint32)
    the header (UTF-8 JSON), then the raw bytes of the arrays the header describes

The first request ("hello") gives the import path and the resource limits; after
that the grader asks for imports, attribute reads and writes, calls, operators
and array values. Anything that is not plain data (a tensor, a model, a dtype)
stays here and is answered with a handle (``{"__obj__": n}``) that later requests
name. The student's output goes to standard error: standard output carries only
this protocol. The test logic, the expected values and the verdicts live in the
grader; this process sees the inputs the grader chose and nothing else.

It is self-contained (the grader ships its text, not a path), and imports
nothing from minae until the grader asks for the student's ``minae``.
"""

import json
import operator
import os
import struct
import sys

MAX_TEXT = 2000  # characters of an exception message sent back
BINARY_OPS = {
    name: getattr(operator, name)
    for name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "lt", "le", "gt", "ge")
}
UNARY_OPS = {"neg": operator.neg, "pos": operator.pos, "abs": abs, "len": len, "float": float, "int": int,
             "bool": bool, "str": str, "list": list}  # fmt: skip


class Server:
    def __init__(self, fin, fout):
        self.fin, self.fout = fin, fout
        self.objs, self.ids, self.next = {}, {}, 1
        self.np = None
        self.root = ""  # the folder holding the copy's minae package (frames are named relative to it)
        self.helpers, self.helpers_source = {}, ""

    # ------------------------------------------------------------ framing ---
    def read(self, n):
        out = bytearray()
        while len(out) < n:
            chunk = self.fin.read(n - len(out))
            if not chunk:
                raise SystemExit(0)  # the grader closed the pipe: nothing more to do
            out += chunk
        return bytes(out)

    def receive(self):
        head, size = struct.unpack("<II", self.read(8))
        header = json.loads(self.read(head).decode("utf-8"))
        return header, self.read(size)

    def send(self, header, blobs=()):
        data = json.dumps(header, ensure_ascii=True, allow_nan=False).encode("ascii")
        raw = b"".join(blobs)
        self.fout.write(struct.pack("<II", len(data), len(raw)) + data + raw)
        self.fout.flush()

    # ----------------------------------------------------------- encoding ---
    def encode(self, x, blobs, depth=0):
        np = self.np
        if x is None or isinstance(x, (bool, str)):
            return x if not isinstance(x, str) else x[:100_000]
        if isinstance(x, int):
            return x if abs(x) < 2**53 else self.handle(x)
        if isinstance(x, float):
            return x if x == x and abs(x) != float("inf") else {"__float__": repr(x)}
        if depth < 16 and isinstance(x, (list, tuple)):
            return {"__list__" if isinstance(x, list) else "__tuple__": [self.encode(v, blobs, depth + 1) for v in x]}
        if depth < 16 and type(x) is dict and all(isinstance(k, str) for k in x):
            return {"__dict__": [[k, self.encode(v, blobs, depth + 1)] for k, v in x.items()]}
        if np is not None and isinstance(x, np.generic) and x.dtype.kind in "biuf":
            return self.encode(x.item(), blobs, depth)
        if np is not None and type(x) is np.ndarray and x.dtype.kind in "biuf":
            a = np.array(x, dtype=x.dtype.newbyteorder("<"), order="C")
            blobs.append(a.tobytes())
            return {"__nd__": [a.dtype.str, list(a.shape)]}
        return self.handle(x)

    def handle(self, x):
        n = self.ids.get(id(x))  # one handle per object: `a is b` holds in the grader as it does here
        if n is None:
            n, self.next = self.next, self.next + 1
            self.objs[n], self.ids[id(x)] = x, n
        return {"__obj__": n, "type": type(x).__name__[:100]}

    def decode(self, x, raw, pos):
        """Values from the grader: plain data, arrays (bytes in ``raw`` from pos[0] on), handles."""
        if isinstance(x, list):
            return [self.decode(v, raw, pos) for v in x]
        if isinstance(x, dict):
            if "__obj__" in x:
                return self.objs[x["__obj__"]]
            if "__tuple__" in x:
                return tuple(self.decode(v, raw, pos) for v in x["__tuple__"])
            if "__float__" in x:
                return float(x["__float__"])
            if "__nd__" in x:
                dtype, shape = x["__nd__"]
                dt = self.np.dtype(dtype)
                n = dt.itemsize
                for s in shape:
                    n *= s
                a = self.np.frombuffer(raw[pos[0] : pos[0] + n], dtype=dt).reshape(shape).copy()
                pos[0] += n
                return a
            if "__dict__" in x:
                return {k: self.decode(v, raw, pos) for k, v in x["__dict__"]}
            return {k: self.decode(v, raw, pos) for k, v in x.items()}
        return x

    # ---------------------------------------------------------- the requests ---
    def error(self, e):
        try:
            message = str(e)
        except Exception:  # an exception whose __str__ fails
            message = "<unprintable>"
        frames, chain, tb = [], [], e.__traceback__
        while tb is not None:
            chain.append(tb)
            tb = tb.tb_next
        if e.__context__ is not None:  # re-raised with more words (Function.__call__'s "Op: inputs …: ", from
            tb = e.__context__.__traceback__  # None): the original's frames go on down to the line that raised it
            while tb is not None:
                chain.append(tb)
                tb = tb.tb_next
        for tb in chain:
            code = tb.tb_frame.f_code
            path = os.path.abspath(code.co_filename)
            if self.root and path.startswith(self.root + os.sep):
                name = getattr(code, "co_qualname", None)
                if name is None:  # before Python 3.11
                    owner = tb.tb_frame.f_locals.get("self")
                    name = f"{type(owner).__name__}.{code.co_name}" if owner is not None else code.co_name
                frames.append([os.path.relpath(path, self.root), tb.tb_lineno, name])
        out = {"type": type(e).__name__[:100], "message": message[:MAX_TEXT], "frames": frames[-20:]}
        if isinstance(e, SyntaxError) and isinstance(e.filename, str):
            path = os.path.abspath(e.filename)
            if self.root and path.startswith(self.root + os.sep):  # the student's file and line, not the import site
                out["at"] = [os.path.relpath(path, self.root), e.lineno or 0]
        return out

    def handle_request(self, req, raw):
        op = req["op"]
        args = self.decode(req.get("args", []), raw, [0])
        if op == "import":
            name = args[0]
            if name != "minae" and not name.startswith("minae."):
                raise ImportError(f"the grader asked for {name!r}")
            __import__(name)
            if self.np is None:  # arrays are the copy's backend's (NumPy): everything here is the copy's anyway
                self.np = sys.modules["minae"].backend.np
            return sys.modules[name] if args[1] else sys.modules["minae"]
        if op == "helper":  # the grader's helpers import minae: loaded on first use, after the student's import
            if not self.helpers:
                scope = {"__name__": "minae_grader_helpers"}
                exec(compile(self.helpers_source, "<grader helpers>", "exec"), scope)
                self.helpers = {k: v for k, v in scope.items() if not k.startswith("_")}
            return self.helpers[args[0]]
        if op == "getattr":
            return getattr(args[0], args[1])
        if op == "setattr":
            setattr(args[0], args[1], args[2])
            return None
        if op == "getitem":
            return args[0][args[1]]
        if op == "setitem":
            args[0][args[1]] = args[2]
            return None
        if op == "call":
            return args[0](*args[1], **args[2])
        if op == "binary":
            return BINARY_OPS[args[0]](args[1], args[2])
        if op == "unary":
            return UNARY_OPS[args[0]](args[1])
        if op == "enter":
            return args[0].__enter__()
        if op == "exit":
            return args[0].__exit__(None, None, None)
        if op == "array":  # a tensor's or an array's values, as float64
            x = args[0]
            minae = sys.modules.get("minae")
            if minae is not None and isinstance(x, getattr(minae, "Tensor", ())):
                x = x.data
            convert = getattr(getattr(minae, "backend", None), "to_numpy", self.np.asarray)
            return self.np.array(convert(x), dtype=self.np.float64)
        raise ValueError(f"unknown request {op!r}")

    def serve(self):
        hello, _ = self.receive()
        limits(hello.get("limits", {}))
        why = confine()  # before any of the student's code: its every process inherits the filter
        sys.path[:0] = [p for p in hello["path"] if isinstance(p, str)]
        self.root = os.path.abspath(hello["root"])
        self.helpers_source = hello["helpers"]
        self.send({"ok": "ready" if why is None else "unconfined: " + why})
        while True:
            req, raw = self.receive()
            blobs = []
            try:
                value = self.handle_request(req, raw)
                header = {"ok": self.encode(value, blobs)}
            except BaseException as e:  # the student's code raised (SystemExit and KeyboardInterrupt too)
                blobs = []
                header = {"raised": self.error(e)}
            self.send(header, blobs)


def limits(spec):
    """The resource limits (soft = hard: the student's code cannot raise them again)."""
    import resource

    for name, value in spec.items():
        which = getattr(resource, "RLIMIT_" + name.upper(), None)
        if which is not None and isinstance(value, int):
            try:
                resource.setrlimit(which, (value, value))
            except (ValueError, OSError):
                pass


# The kernel interfaces a task's code never needs and that would reach past the sandbox's bounds, refused
# (EPERM) by a seccomp filter: memory that no process's resident pages show (the whole System V family,
# made or reached: shared memory, message queues and semaphores, whose sets of up to 32,000 values are a
# stash as good as a segment; POSIX message queues, memfd: the watchdog's sum misses it, and where no IPC
# namespace is unshared (the fallback user) it outlives the task), nested namespaces (a user namespace gives full
# capabilities inside it: a tmpfs of any size, mounts), tracing another process (the sandbox's init
# included: under a grader that is not root it is the task's uid), sockets (the fallback user's network),
# and the kernel's larger attack surfaces (io_uring, userfaultfd, bpf, perf, keyrings).
SYSCALLS = {  # machine -> (audit arch, {name: number}); clone, clone3 and mmap are handled on their own
    "x86_64": (0xC000003E, dict(shmget=29, shmat=30, shmctl=31, semget=64, semop=65, semctl=66, msgget=68,
                                msgsnd=69, msgrcv=70, msgctl=71, semtimedop=220, mq_open=240, memfd_create=319,
                                memfd_secret=447,
                                unshare=272, setns=308, mount=165, pivot_root=155, chroot=161, fsopen=430,
                                open_tree=428, move_mount=429, mount_setattr=442, ptrace=101,
                                process_vm_readv=310, process_vm_writev=311, pidfd_getfd=438, socket=41,
                                socketpair=53, io_uring_setup=425, userfaultfd=323, bpf=321,
                                perf_event_open=298, fanotify_init=300, keyctl=250, add_key=248,
                                request_key=249, clone=56, clone3=435, mmap=9)),
    "aarch64": (0xC00000B7, dict(shmget=194, shmat=196, shmctl=195, semget=190, semop=193, semctl=191,
                                 msgget=186, msgsnd=189, msgrcv=188, msgctl=187, semtimedop=192, mq_open=180,
                                 memfd_create=279, memfd_secret=447,
                                 unshare=97, setns=268, mount=40, pivot_root=41, chroot=51, fsopen=430,
                                 open_tree=428, move_mount=429, mount_setattr=442, ptrace=117,
                                 process_vm_readv=270, process_vm_writev=271, pidfd_getfd=438, socket=198,
                                 socketpair=199, io_uring_setup=425, userfaultfd=282, bpf=280,
                                 perf_event_open=241, fanotify_init=262, keyctl=219, add_key=217,
                                 request_key=218, clone=220, clone3=435, mmap=222)),
}  # fmt: skip
CLONE_NEW = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET


def seccomp_program(machine):
    """The filter (classic BPF, as ``struct sock_filter`` entries: code, jt, jf, k) for ``machine``, or None.

    Reads ``struct seccomp_data`` (nr at offset 0, arch at 4, args[0]'s low word at 16, little-endian):
    another architecture's calling convention (x86's 32-bit ABIs) is refused whole; clone is allowed
    unless it asks for a namespace (its flags are args[0]); clone3 answers ENOSYS (its flags sit in
    memory a filter cannot read), which makes the C library fall back to clone; mmap is allowed unless
    it asks for a shared mapping (its flags are args[3], at offset 40).
    """
    if machine not in SYSCALLS:
        return None
    arch, numbers = SYSCALLS[machine]
    LD, JEQ, JSET, JGE, RET = 0x20, 0x15, 0x45, 0x35, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, JSET, JGE, BPF_RET
    ALLOW, EPERM, ENOSYS = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    prog = [(LD, 0, 0, 4), (JEQ, 1, 0, arch), (RET, 0, 0, EPERM), (LD, 0, 0, 0)]
    if machine == "x86_64":
        prog += [(JGE, 0, 1, 0x40000000), (RET, 0, 0, EPERM)]  # x32's numbers
    for name, nr in numbers.items():
        if name not in ("clone", "clone3", "mmap"):
            prog += [(JEQ, 0, 1, nr), (RET, 0, 0, EPERM)]
    prog += [(JEQ, 0, 1, numbers["clone3"]), (RET, 0, 0, ENOSYS)]
    # mmap with MAP_SHARED (or MAP_SHARED_VALIDATE: bit 0 of its flags, args[3]): a shared mapping of nothing
    # or of /dev/zero is shmem that outlives the mapper's resident pages (a forked process keeps it mapped,
    # untouched, while its filler unmaps: any amount held in no process's RSS); NumPy and the interpreter
    # map only privately, and a file's own shared pages are not needed by any task
    prog += [(JEQ, 0, 4, numbers["mmap"]), (LD, 0, 0, 40), (JSET, 0, 1, 0x1), (RET, 0, 0, EPERM), (LD, 0, 0, 0)]
    prog += [(JEQ, 0, 3, numbers["clone"]), (LD, 0, 0, 16), (JSET, 0, 1, CLONE_NEW), (RET, 0, 0, EPERM)]
    return prog + [(RET, 0, 0, ALLOW)]


def confine():
    """Install ``seccomp_program`` on this process (inherited by every process it starts, never removable).

    None when it is in place, else why not (no seccomp: another system, an unknown machine, no ctypes).
    """
    if not sys.platform.startswith("linux"):
        return f"no seccomp on {sys.platform}"
    prog = seccomp_program(os.uname().machine)
    if prog is None:
        return f"no seccomp filter written for {os.uname().machine}"
    try:
        import ctypes

        class Program(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        code = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *ins) for ins in prog))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
        if libc.prctl(38, 1, None, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS: what lets an unprivileged process filter
            return f"PR_SET_NO_NEW_PRIVS failed (errno {ctypes.get_errno()})"
        writes_beneath(libc, os.getcwd())  # a second bound where the kernel has it: the cleanup stays the first
        program = Program(len(prog), ctypes.cast(code, ctypes.c_void_p))
        if libc.prctl(22, 2, ctypes.byref(program), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
            return f"the seccomp filter was refused (errno {ctypes.get_errno()})"
    except (ImportError, OSError, AttributeError) as e:
        return f"no seccomp filter ({type(e).__name__}: {e})"
    return None


# Landlock's rights to change a file system (linux/landlock.h): write a file, remove a folder or a file, make
# a device, folder, file, socket, fifo or link (ABI 1); move or link a file elsewhere (REFER, ABI 2);
# truncate a file (ABI 3). Reading is not handled: it stays as the sandbox's permissions make it.
LANDLOCK_WRITES = {1: 0x1FF2, 2: 0x3FF2, 3: 0x7FF2}
LANDLOCK_FILE_WRITES = {1: 0x2, 2: 0x2, 3: 0x4002}  # what a rule on a file (not a folder) may allow


def writes_beneath(libc, folder):
    """Where Landlock runs (Linux 5.13+): this process and every one it starts may change files only beneath
    ``folder`` (the task's scratch, its working folder) and write /dev/null; None, or why not.

    The fallback user otherwise writes every folder any uid may write, however deep (its cleanup finds
    them within a few levels of / only): a file left there outlives the task and carries data (another
    task's stand-in) to the next child. Needs PR_SET_NO_NEW_PRIVS, set before.
    """
    import ctypes

    # landlock_create_ruleset; landlock_add_rule and landlock_restrict_self are the two numbers after it
    nr = {"x86_64": 444, "aarch64": 444}.get(os.uname().machine)
    if nr is None:
        return "no Landlock numbers for this machine"
    libc.syscall.restype = ctypes.c_long
    version = ctypes.c_uint32(1)  # LANDLOCK_CREATE_RULESET_VERSION: the ABI's version, no ruleset
    abi = libc.syscall(ctypes.c_long(nr), None, ctypes.c_size_t(0), version)
    if abi < 1:
        return f"no Landlock (errno {ctypes.get_errno()})"
    abi = min(abi, 3)
    attr = struct.pack("=Q", LANDLOCK_WRITES[abi])  # struct landlock_ruleset_attr's first field: handled_access_fs
    ruleset = libc.syscall(ctypes.c_long(nr), attr, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        return f"the Landlock ruleset was refused (errno {ctypes.get_errno()})"
    try:
        for path, rights in ((folder, LANDLOCK_WRITES[abi]), ("/dev/null", LANDLOCK_FILE_WRITES[abi])):
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:  # struct landlock_path_beneath_attr, packed: allowed_access (u64), parent_fd (s32)
                rule = struct.pack("=Qi", rights, fd)
                if libc.syscall(ctypes.c_long(nr + 1), ruleset, ctypes.c_int(1), rule, ctypes.c_uint32(0)) != 0:
                    return f"a Landlock rule for {path} was refused (errno {ctypes.get_errno()})"
            finally:
                os.close(fd)
        if libc.syscall(ctypes.c_long(nr + 2), ruleset, ctypes.c_uint32(0)) != 0:
            return f"Landlock was refused (errno {ctypes.get_errno()})"
    finally:
        os.close(ruleset)
    return None


def main():
    fin = os.fdopen(0, "rb", buffering=0)
    fout = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # the student's prints go to standard error; standard output is the protocol's
    sys.stdout = os.fdopen(1, "w", buffering=1, errors="replace")
    Server(fin, fout).serve()


if __name__ == "__main__":
    main()

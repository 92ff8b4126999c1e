"""The grader's side of the pipe to a sandboxed child: bounded frames, absolute deadlines, handles as proxies.

A frame is 8 bytes (the JSON header's length and the raw bytes' length, two
little-endian uint32) followed by the header and the raw array bytes (see
``_child.py``). The grader reads a frame in two exact-size reads into buffers
sized once from the lengths, after checking them against the caps, so that a
child cannot make it buffer without bound or re-copy (a 60 MB line costs one
read, and more than ``MAX_RAW`` is refused before it is read). The caps bound
a test, not only an answer: the answers to one test's requests together carry at
most ``MAX_HEADER`` bytes of JSON and ``MAX_RAW`` bytes of arrays (``Channel.
new_test`` starts the count), because a test may keep every answer it gets (a
list of arrays it concatenates, handles), and what the grader holds must not
grow with the number of answers. Handles are held weakly: a proxy lives as long
as the test keeps it. Every read and write waits at most until an absolute
deadline the grader set (the test's and the task's limits): no message of the
child extends it.

Whatever the child sends is data: JSON whose numbers are finite (no NaN or
Infinity token, no number like ``1e999`` that overflows to one), at most
``MAX_DEPTH`` deep, in the tagged forms below, arrays of a numeric dtype whose
byte count matches their shape and whose shape (zero-length axes counted as 1)
spans at most ``MAX_RAW`` bytes of float64. Anything else is a ``ProtocolError``: the grader
kills the child and the test that asked fails.
"""

from __future__ import annotations

import json
import math
import os
import selectors
import struct
import time
import weakref

from ..backend import np as numpy

MAX_HEADER = 4 * 2**20  # bytes of JSON in the answers to one test (an honest one's are a few kB)
MAX_RAW = 64 * 2**20  # bytes of arrays in the answers to one test (an honest one's are at most ~1 MB)
MAX_DEPTH = 24
MAX_INT = 2**53
STABLE = {"function", "type", "module", "builtin_function_or_method", "ABCMeta"}  # kinds of handle kept
DTYPES = {"<f8", "<f4", "<f2", "<i8", "<i4", "<i2", "|i1", "|u1", "<u2", "<u4", "<u8", "|b1"}


class ProtocolError(BaseException):
    """The child broke the protocol or a deadline: the grader kills it, the test fails with this reason.

    A BaseException, so that a test's own ``except Exception`` cannot swallow it.
    """


class RemoteError(Exception):
    """The student's code raised (in the child): its type, message, frames (for the failure line)."""

    def __init__(self, data: dict):
        self.data = data
        super().__init__(f"{data.get('type', '?')}: {data.get('message', '')}")


def _reject(x):
    raise ValueError(f"the child sent {x}, which is not allowed in the protocol")


def _finite(text: str) -> float:
    """A JSON number as a float, refused unless finite: ``1e999`` overflows to inf without a word for it."""
    x = float(text)
    if not math.isfinite(x):
        _reject(text[:40])
    return x


def _check_depth(x, depth=0):
    if depth > MAX_DEPTH:
        raise ProtocolError("the child sent data nested too deep")
    if isinstance(x, list):
        for v in x:
            _check_depth(v, depth + 1)
    elif isinstance(x, dict):
        for v in x.values():
            _check_depth(v, depth + 1)


class Channel:
    """One child's pipe pair; ``request`` sends one request and returns the decoded answer."""

    def __init__(self, proc, kill):
        self.proc, self.kill = proc, kill
        self.wfd, self.rfd = proc.stdin.fileno(), proc.stdout.fileno()
        os.set_blocking(self.wfd, False)
        os.set_blocking(self.rfd, False)
        self.deadline = math.inf
        self.why = "the time limit"
        self.broken: str | None = None
        self.proxies = weakref.WeakValueDictionary()  # id -> its live proxy (one per object, while kept)
        self.stable = {}  # (module handle, name) -> a function, class or module handle read from it
        self.new_test()
        self._selectors = {}
        for fd, event in ((self.wfd, selectors.EVENT_WRITE), (self.rfd, selectors.EVENT_READ)):
            self._selectors[event] = selectors.DefaultSelector()
            self._selectors[event].register(fd, event)

    def new_test(self):
        """Start counting a new test's answers against the caps (JSON bytes, array bytes) afresh."""
        self.left = [MAX_HEADER, MAX_RAW]

    # ------------------------------------------------------------- framing ---
    def _wait(self, fd, event):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self.fail(f"ran longer than {self.why} (stopped)")
        if not self._selectors[event].select(timeout=min(remaining, 3600)):
            self.fail(f"ran longer than {self.why} (stopped)")

    def _write(self, data: bytes):
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.wfd, view)
            except BlockingIOError:  # the pipe is full: wait until the child reads, at most until the deadline
                self._wait(self.wfd, selectors.EVENT_WRITE)
                continue
            except OSError:
                self.proc.poll()
                self.fail(f"ended the process (exit {exit_status(self.proc.returncode)})")
            view = view[n:]

    def _read(self, n: int) -> bytearray:
        buf = bytearray(n)  # sized once: no re-buffering whatever the child sends
        view, got = memoryview(buf), 0
        while got < n:
            if time.monotonic() >= self.deadline:
                self.fail(f"ran longer than {self.why} (stopped)")
            try:
                k = os.readv(self.rfd, [view[got:]])
            except BlockingIOError:
                self._wait(self.rfd, selectors.EVENT_READ)
                continue
            if k == 0:
                try:  # the pipe closes a moment before the process can be reaped: wait for its status
                    self.proc.wait(timeout=2)
                except Exception:
                    pass
                self.fail(f"ended the process (exit {exit_status(self.proc.returncode)})")
            got += k
        return buf

    def close(self):
        for sel in self._selectors.values():
            sel.close()

    def fail(self, why: str):
        self.broken = why
        self.kill()
        self.close()
        raise ProtocolError(why)

    # ------------------------------------------------------------- encoding ---
    def encode(self, x, blobs, depth=0):
        if depth > MAX_DEPTH:
            raise TypeError("the test sends data nested too deep")
        if isinstance(x, Proxy):
            if x._channel is not self:
                raise ProtocolError("an object of an earlier child process (it was restarted)")
            return {"__obj__": x._id}
        if x is None or isinstance(x, (bool, int, str)):
            return x
        if isinstance(x, float):
            return x if math.isfinite(x) else {"__float__": repr(x)}
        if isinstance(x, numpy.generic):
            return self.encode(x.item(), blobs, depth)
        if isinstance(x, numpy.ndarray):
            a = numpy.array(x, dtype=x.dtype.newbyteorder("<"), order="C")
            if a.dtype.str not in DTYPES:
                raise TypeError(f"cannot send an array of dtype {a.dtype} to the child")
            blobs.append(a.tobytes())
            return {"__nd__": [a.dtype.str, list(a.shape)]}
        if isinstance(x, list):
            return [self.encode(v, blobs, depth + 1) for v in x]
        if isinstance(x, tuple):
            return {"__tuple__": [self.encode(v, blobs, depth + 1) for v in x]}
        if isinstance(x, dict) and all(isinstance(k, str) for k in x):
            return {"__dict__": [[k, self.encode(v, blobs, depth + 1)] for k, v in x.items()]}
        raise TypeError(f"cannot send a {type(x).__name__} to the child (only data and its own objects)")

    def decode(self, x, raw: bytearray, pos: list):
        """The child's answer as values; anything outside the protocol's forms is a ProtocolError."""
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, int):
            if abs(x) >= MAX_INT:
                raise ProtocolError("the child sent an integer out of range")
            return x
        if isinstance(x, float):
            return x  # finite: the parser refuses NaN, Infinity and numbers that overflow
        if not isinstance(x, dict) or len(x) not in (1, 2):
            raise ProtocolError(f"the child sent a {type(x).__name__} outside the protocol")
        ((tag, value), *rest) = x.items()
        if tag == "__obj__" and isinstance(value, int) and rest and rest[0][0] == "type":
            proxy = self.proxies.get(value)  # one proxy per object: identity (`is`) carries over
            if proxy is None:
                proxy = self.proxies[value] = Proxy(self, value, str(rest[0][1])[:100])
            return proxy
        if rest:
            raise ProtocolError("the child sent a malformed value")
        if tag in ("__list__", "__tuple__") and isinstance(value, list):
            items = [self.decode(v, raw, pos) for v in value]
            return items if tag == "__list__" else tuple(items)
        if tag == "__dict__" and isinstance(value, list):
            out = {}
            for pair in value:
                if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                    raise ProtocolError("the child sent a malformed dict")
                out[pair[0]] = self.decode(pair[1], raw, pos)
            return out
        if tag == "__float__" and value in ("nan", "inf", "-inf"):
            return float(value)
        if tag == "__nd__" and isinstance(value, list) and len(value) == 2:
            dtype, shape = value
            if dtype not in DTYPES or not isinstance(shape, list) or len(shape) > 16:
                raise ProtocolError(f"the child sent an array of dtype {str(dtype)[:20]!r}")
            if not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < MAX_INT for s in shape):
                raise ProtocolError("the child sent an array with a malformed shape")
            if 8 * math.prod(max(s, 1) for s in shape) > MAX_RAW:
                # its extent, zero-length axes counted as 1, as float64: an empty (0, 10⁹) array costs no
                # bytes to send, but a reduction over its first axis would make the grader allocate 8 GB
                raise ProtocolError("the child sent an array whose shape spans more than the protocol allows")
            dt = numpy.dtype(dtype)
            n = dt.itemsize * math.prod(shape)
            if pos[0] + n > len(raw):
                raise ProtocolError("the child's array is larger than the bytes it sent")
            a = numpy.frombuffer(raw, dtype=dt, count=math.prod(shape), offset=pos[0]).reshape(shape).copy()
            pos[0] += n
            return a
        raise ProtocolError("the child sent a value outside the protocol")

    # ------------------------------------------------------------- requests ---
    def request(self, op: str, *args):
        if self.broken:
            raise ProtocolError(self.broken)
        blobs = []
        header = json.dumps({"op": op, "args": self.encode(list(args), blobs)}, allow_nan=False).encode()
        raw = b"".join(blobs)
        self._write(struct.pack("<II", len(header), len(raw)) + header + raw)
        return self.answer()

    def answer(self):
        head, size = struct.unpack("<II", bytes(self._read(8)))
        if head > self.left[0] or size > self.left[1]:
            self.fail(
                f"the child sent more than {MAX_HEADER >> 20} MB of JSON or {MAX_RAW >> 20} MB of arrays "
                "in its answers to one test (the limits)"
            )
        self.left = [self.left[0] - head, self.left[1] - size]
        text, raw = self._read(head), self._read(size) if size else bytearray()
        try:
            header = json.loads(text.decode("utf-8"), parse_constant=_reject, parse_float=_finite)
            _check_depth(header)
            if not isinstance(header, dict) or len(header) != 1:
                raise ProtocolError("the child's answer is not one value")
            ((kind, value),) = header.items()
            if kind == "raised":
                if not isinstance(value, dict):
                    raise ProtocolError("a malformed error")
                raise RemoteError(_error_data(value))
            if kind != "ok":
                raise ProtocolError("the child's answer is neither a value nor an error")
            pos = [0]
            out = self.decode(value, raw, pos)
            if pos[0] != len(raw):
                raise ProtocolError("the child sent bytes that no array holds")
            return out
        except (ValueError, RecursionError, UnicodeDecodeError, TypeError) as e:
            self.fail(f"the child sent a malformed message ({type(e).__name__})")
        except ProtocolError as e:
            self.fail(str(e))


_SIGNALS = {
    "SIGKILL": "stopped by a limit of the sandbox (CPU time, memory, processes)",
    "SIGXCPU": "its CPU time ran out",
    "SIGXFSZ": "it wrote a file larger than the limit",
    "SIGSEGV": "a crash in native code",
    "SIGBUS": "a crash in native code",
    "SIGABRT": "aborted",
}


def exit_status(code) -> str:
    """A child's exit status for a student: "status N", with the signal that ended it by name and cause.

    A signal N shows as -N where the child is the grader's own process, and as 128 + N where bubblewrap
    passes on the status of the process it ran.
    """
    import signal

    if code is None:
        return "status unknown"
    number = -code if code < 0 else code - 128 if 128 < code < 128 + 65 else None
    try:
        name = signal.Signals(number).name if number is not None else None
    except ValueError:
        name = None
    if name is None:
        return f"status {code}"
    cause = _SIGNALS.get(name)
    return f"status {code}, {name}" + (f": {cause}" if cause else "")


def _error_data(value: dict) -> dict:
    """The child's report of an exception, as plain strings and short frames (never trusted for more)."""
    frames = []
    for f in value.get("frames", [])[:20] if isinstance(value.get("frames"), list) else []:
        if isinstance(f, list) and len(f) == 3 and isinstance(f[1], int):
            frames.append([str(f[0])[:300], f[1], str(f[2])[:200]])
    out = {"type": str(value.get("type", "?"))[:100], "message": str(value.get("message", ""))[:2000], "frames": frames}
    at = value.get("at")
    if isinstance(at, list) and len(at) == 2 and isinstance(at[1], int):
        out["at"] = [str(at[0])[:300], at[1]]
    return out


# ------------------------------------------------------------------ proxies ---
class Proxy:
    """An object that lives in the child; every use is a request. Its repr is local (it never blocks)."""

    __slots__ = ("_channel", "_id", "_type", "__weakref__")
    __array_ufunc__ = None  # NumPy defers to the reflected operators below instead of converting

    def __init__(self, channel, id_, type_):
        object.__setattr__(self, "_channel", channel)
        object.__setattr__(self, "_id", id_)
        object.__setattr__(self, "_type", type_)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if self._type != "module":
            return self._channel.request("getattr", self, name)
        # a module's functions, classes and submodules are read once per child: a third of a test's round
        # trips were `minae.exp`-like reads of the same names. Only handles of those kinds are kept (data is
        # asked for again), and a write through the grader drops the name; the child rebinding it itself
        # only makes the grader call what it first got
        key = (self._id, name)
        found = self._channel.stable.get(key)
        if found is None:
            found = self._channel.request("getattr", self, name)
            if isinstance(found, Proxy) and found._type in STABLE:
                self._channel.stable[key] = found
        return found

    def __setattr__(self, name, value):
        self._channel.stable.pop((self._id, name), None)
        self._channel.request("setattr", self, name, value)

    def __call__(self, *args, **kwargs):
        return self._channel.request("call", self, list(args), kwargs)

    def __getitem__(self, key):
        return self._channel.request("getitem", self, key)

    def __setitem__(self, key, value):
        self._channel.request("setitem", self, key, value)

    def __enter__(self):
        return self._channel.request("enter", self)

    def __exit__(self, *exc):
        self._channel.request("exit", self)
        return False

    def __iter__(self):
        return iter(self._channel.request("unary", "list", self))

    def __repr__(self):
        return f"<{self._type} in the graded code>"

    def __array__(self, dtype=None, copy=None):
        a = self._channel.request("array", self)
        return a if dtype is None else a.astype(dtype)

    def numpy(self):
        """The object's ``numpy()``, which must be data (an array, decoded here), never a handle.

        A test computes on what ``numpy()`` gives with its own NumPy (means, deviations, differences); a
        handle would have the graded code answer those computations, with no values behind them.
        """
        a = self._channel.request("getattr", self, "numpy")()
        if not isinstance(a, numpy.ndarray):
            raise TypeError(f"numpy() of a {self._type} of the graded code gave a {type(a).__name__}, not an array")
        return a


def _unary(op, convert=None):
    def method(self):
        value = self._channel.request("unary", op, self)
        if convert is not None and not isinstance(value, convert):
            raise TypeError(f"{op}() of an object of the graded code gave a {type(value).__name__}")
        return value

    return method


def _binary(op, reflected=False):
    if reflected:
        return lambda self, other: self._channel.request("binary", op, other, self)
    return lambda self, other: self._channel.request("binary", op, self, other)


for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul"):
    setattr(Proxy, f"__{_op}__", _binary(_op))
    setattr(Proxy, f"__r{_op}__", _binary(_op, reflected=True))
for _op in ("lt", "le", "gt", "ge"):
    setattr(Proxy, f"__{_op}__", _binary(_op))
for _op, _type in (("neg", None), ("pos", None), ("abs", None), ("len", int), ("float", float), ("int", int),
                   ("bool", bool), ("str", str)):  # fmt: skip
    setattr(Proxy, f"__{_op}__", _unary(_op, _type))
Proxy.__index__ = Proxy.__int__

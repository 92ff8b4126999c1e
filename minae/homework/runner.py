"""Run a task's tests in the grader's process, against the reference or against a sandboxed child.

A test file is executed here, in the grader, with its ``import minae`` bound to
one of two worlds:

- the local world: the grader's own ``minae`` (the reference);
- the remote world: a proxy of the student's ``minae`` in the sandboxed child
  (``protocol.Proxy``): each attribute, call and operator the test uses on it is
  a request, answered with data or a handle; ``numpy()`` only with data (the
  test's own NumPy runs on it here, not in the graded code).

Either way the test's control flow, its NumPy expectations and the checks'
records live here; ``minae.homework.testing`` is loaded afresh for each world
(``WORLD`` tells it where the code under test lives) and records the checks
into the list this runner hands out. ``minae.backend`` in the remote world is
the grader's NumPy: the child's own modules never compute an expected value.
"""

from __future__ import annotations

import builtins
import functools
import types

from ..backend import np as numpy
from .protocol import Proxy, RemoteError

SOURCE_FILES = ("testing.py", "_helpers.py", "_child.py")  # the grader's files the runs are made of


class LocalWorld:
    """The reference: the grader's own minae, in this process."""

    remote = False

    def seed(self, seed):
        import minae

        minae.manual_seed(int(seed) % (2**32))

    def import_(self, name, globals_, locals_, fromlist, level):
        return builtins.__import__(name, globals_, locals_, fromlist, level)


class RemoteWorld:
    """A student's copy in a sandboxed child, reached through ``channel``."""

    remote = True

    def __init__(self, channel):
        self.channel = channel
        self.backend = types.ModuleType("minae.backend")  # the grader's NumPy, not the child's
        self.backend.np = numpy
        self.backend.to_numpy = numpy.asarray

    def is_remote(self, x) -> bool:
        return isinstance(x, Proxy)

    def is_tensor(self, x) -> bool:
        return isinstance(x, Proxy) and x._type in ("Tensor", "Parameter")

    def as_numpy(self, x):
        a = self.channel.request("array", x)
        if not isinstance(a, numpy.ndarray):
            raise TypeError(f"the values of a {x._type} came back as a {type(a).__name__}")
        return a.astype(numpy.float64, copy=False)

    def helper(self, name):
        return self.channel.request("helper", name)

    def seed(self, seed):
        self.import_("minae", None, None, (), 0).manual_seed(int(seed) % (2**32))

    def import_(self, name, globals_, locals_, fromlist, level):
        if level == 0 and name == "minae.backend":
            return self.backend if fromlist else self.import_("minae", None, None, (), 0)
        if level == 0 and (name == "minae" or name.startswith("minae.")):
            key = ("import", name, bool(fromlist))  # a module is imported once per child: its handle is kept
            if key not in self.channel.stable:
                self.channel.stable[key] = self.channel.request("import", name, bool(fromlist))
            return self.channel.stable[key]
        return builtins.__import__(name, globals_, locals_, fromlist, level)


@functools.lru_cache(maxsize=64)
def _compiled(text: str, path: str):
    """The grader's own test code, compiled once per text (a code object runs in any namespace, unchanged)."""
    return compile(text, path, "exec")


def load(world, sources: dict, test_path: str, name: str):
    """The test module ``test_path`` (its text from ``sources``) with ``minae`` bound to ``world``."""
    testing = types.ModuleType("minae.homework.testing")
    homework = types.ModuleType("minae.homework")
    homework.__path__ = []
    homework.testing = testing
    marker = types.ModuleType("minae.homework._world")
    marker.WORLD = world if world.remote else None

    def hooked(name_, globals_=None, locals_=None, fromlist=(), level=0):
        if level == 0 and name_ == "minae.homework._world":
            if not world.remote:
                raise ImportError("no world: the local reference")
            return marker
        if level == 0 and name_ == "minae.homework.testing" and fromlist:
            return testing
        if level == 0 and name_ == "minae.homework" and fromlist and set(fromlist) <= {"testing"}:
            return homework
        return world.import_(name_, globals_, locals_, fromlist, level)

    scope = dict(vars(builtins), __import__=hooked)
    testing.__dict__.update(__builtins__=scope, __name__="minae.homework.testing", __file__="<grader testing>")
    exec(_compiled(sources["testing.py"], "minae/homework/testing.py"), testing.__dict__)
    module = types.ModuleType(name)
    module.__dict__.update(__builtins__=scope, __name__=name, __file__=test_path)
    exec(_compiled(sources[test_path], test_path), module.__dict__)
    return module, testing


def error_data(exc) -> dict:
    """An exception a test raised, as the failure line's data: the child's report, or the grader's own."""
    if isinstance(exc, RemoteError):
        return exc.data
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable>"
    return {"type": type(exc).__name__, "message": message[:2000], "frames": [], "local": True}

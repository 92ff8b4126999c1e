"""Helpers for the homework's tests: checks that a grader judges from data alone.

A task's test calls the student's code and hands what it got to these checks. Run
under pytest (or by hand) a check raises ``AssertionError`` with one readable line,
as any assertion. Run by the grader, a check only *records* what the student's
code gave (arrays, shapes, numbers, strings); the grader's own process then
compares those records with the ones the same test recorded against the
reference ``minae`` (same seed, same inputs) and writes the verdict. So nothing
the student's code does in its own process (patching ``minae.gradcheck``, these
helpers, numpy) can write a pass: it can only hand back values.

Each task's tests must test that task alone, so that a student's score for one task
does not hang on another task of the same assignment. Two helpers keep the tests of
assignment 1's ops apart from each other and from task 1.5 (the backward loop):

- ``one_op_gradcheck`` checks a function made of one op, with the gradients taken
  straight from that op's ``backward`` instead of through ``run_backward``;
- ``leading_axes_sum_to`` stands in for ``sum_to`` (task 1.2) where an op's
  backward needs it, for the one case those tests use: dropping leading axes.

Inputs come from ``rng(k)``: the same for every run of the suite by hand, drawn
fresh (from the grading run's seed) when the grader runs the tests.
"""

from __future__ import annotations

import functools

import minae
from minae.backend import np, to_numpy

try:  # set when the grader loads these helpers for one run: where the code under test lives
    from minae.homework._world import WORLD
except ImportError:  # imported plainly (a run by hand, ``check``): the code under test is this process's minae
    WORLD = None

__all__ = [
    "as_numpy",
    "assert_close",
    "assert_equal",
    "assert_shape",
    "assert_within",
    "gradcheck",
    "gradgradcheck",
    "named",
    "one_op_gradcheck",
    "one_op_backward",
    "leading_axes_sum_to",
    "default_dtype",
    "helper",
    "idea",
    "kl_from_densities",
    "rng",
]

# set by the grader's runner: a callable that receives each check as a dict of plain data
recorder = None
run_seed = None  # the grading run's seed (None: the fixed inputs of a run by hand)


def rng(k: int):
    """The test's k-th generator of inputs: fixed by hand, fresh per grading run (seeded by the run)."""
    return np.random.default_rng(k if run_seed is None else [int(run_seed), int(k)])


def kl_from_densities(mu, logvar):
    """D_KL(N(μ, v) ‖ N(0, 1)) per dimension, as E_q[log q(z) − log p(z)] by Gauss–Hermite quadrature over
    z = μ + √v x, x ~ N(0, 1): the definition, not its closed form (exact here: the integrand is a polynomial
    of degree 2 in x)."""
    x, w = np.polynomial.hermite_e.hermegauss(6)
    mu, v = np.asarray(mu)[..., None], np.exp(np.asarray(logvar))[..., None]
    z = mu + np.sqrt(v) * x
    log_q = -0.5 * np.log(2 * np.pi * v) - (z - mu) ** 2 / (2 * v)
    log_p = -0.5 * np.log(2 * np.pi) - z**2 / 2
    return ((log_q - log_p) * w).sum(-1) / np.sqrt(2 * np.pi)


def _is_tensor(x) -> bool:
    if WORLD is not None:
        return WORLD.is_tensor(x)
    return isinstance(x, minae.Tensor)


def as_numpy(x):
    """The values of a tensor, an array (of any device) or a number, as a float64 NumPy array."""
    if WORLD is not None and WORLD.is_remote(x):
        return WORLD.as_numpy(x)
    if WORLD is None and isinstance(x, minae.Tensor):
        x = x.data
    # to_numpy, not np.asarray: NumPy may not read a CuPy array (or a list of them) implicitly. Always a copy:
    # a check records the values as they are when it is made, not those of a tensor a later in-place step
    # changes (the reference's Adam checks after steps 1, 2 and 3 all recorded step 3's values)
    return np.array(to_numpy(x), dtype=np.float64)


def _plain(x):
    """A value a check compares, as JSON-able data: numbers, strings, booleans, lists of those."""
    if isinstance(x, (bool, int, float, str)) or x is None:
        return x
    if isinstance(x, (tuple, list)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return str(x)


def _emit(record: dict) -> bool:
    """Hand a check to the grader's recorder; True when there is one (then the check does not judge)."""
    if recorder is None:
        return False
    if _ideas:
        record["idea"] = _ideas[-1]
    recorder(record)
    return True


# ------------------------------------------------------------------ the ideas ---
# What a test checks, in the words of the lecture: the failure line a student sees starts with it, whether a
# check found a wrong value or the student's code raised (then with the exception's type and the student's
# file:line), so a wrong solution is told the idea it missed, never a bare NumPy message. A test file declares
# its task's idea as IDEA; ``@idea(...)`` on a test, or ``with idea(...):`` around some of its checks, names a
# narrower one (the innermost wins).
_ideas: list = []


class idea:
    """The idea the checks inside check: a decorator for a test, or a ``with`` block for a part of one."""

    def __init__(self, text: str):
        self.text = str(text)

    def __call__(self, fn):
        @functools.wraps(fn)  # pytest, run by hand, still sees the test's name and its fixtures
        def test(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)

        test.idea = self.text
        return test

    def __enter__(self):
        _ideas.append(self.text)
        return self

    def __exit__(self, kind, error, tb):
        _ideas.pop()
        if error is not None and getattr(error, "minae_idea", None) is None:
            try:  # the innermost idea in force where it was raised: the grader's failure line names it
                error.minae_idea = self.text
                if recorder is None and hasattr(error, "add_note"):  # a run by hand: pytest shows the note
                    error.add_note(f"the idea this checks: {self.text}")
            except (AttributeError, TypeError):
                pass
        return False


# ------------------------------------------------------------ the judgements ---
# These run where the verdict is written: in the grader's process on recorded data, or in a test run by hand.
def judge_close(actual, expected, what: str, rtol: float, atol: float):
    """None when ``actual`` ≈ ``expected`` elementwise, else the one-line reason."""
    if actual is None:
        return f"{what}: expected a value, got None"
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        if a.size == e.size == 1:
            a, e = a.reshape(()), e.reshape(())
        else:
            return f"{what}: expected shape {e.shape}, got shape {a.shape}"
    bad = ~np.isclose(a, e, rtol=rtol, atol=atol)
    if bad.any():
        err = np.where(np.isnan(a) | np.isnan(e), np.inf, np.abs(a - e))
        idx = np.unravel_index(np.argmax(np.where(bad, err, -1.0)), a.shape)
        where = f" at index {tuple(int(i) for i in idx)}" if a.ndim else ""
        count = f" ({int(bad.sum())} of {a.size} values differ)" if a.size > 1 else ""
        return f"{what}: expected {e[idx]:.6g}{where}, got {a[idx]:.6g}{count}"
    return None


def judge_equal(actual, expected, message: str):
    if actual == expected:
        return None
    try:  # the words may quote values of the student's run, braces and all
        return message.format(actual=actual, expected=expected)
    except (KeyError, IndexError, ValueError, AttributeError):
        return f"{message} (got {actual!r}, expected {expected!r})"


def judge_within(value, target, tolerance, what: str):
    if value is not None and abs(value - target) <= tolerance:
        return None
    got = "nothing" if value is None else f"{value:.4g}"
    return f"{what}: expected {target:.4g} ± {tolerance:.2g}, got {got}"


def judge_gradcheck(name, inputs, analytic, numeric, atol, rtol):
    """Compare backward's gradients with finite differences; the message is minae.gradcheck's."""
    for i, a, n in zip(inputs, analytic, numeric):
        n = np.asarray(n, dtype=np.float64)
        a = np.zeros(n.shape) if a is None else np.asarray(a, dtype=np.float64)
        if a.shape != n.shape:
            return f"gradcheck: the gradient of input {i} has shape {a.shape}, expected {n.shape}"
        err = np.abs(a - n) - (atol + rtol * np.abs(n))
        finite = np.isfinite(a) & np.isfinite(n)
        if err.size and (not finite.all() or err.max() > 0):
            bad = np.unravel_index(np.argmax(np.where(finite, err, np.inf)), err.shape)
            where = tuple(int(b) for b in bad)
            return (
                f"gradcheck failed for {name}: input {i} (shape {tuple(n.shape)}), element {where}: "
                f"backward gives {a[bad]:.6g}, finite differences give {n[bad]:.6g} "
                f"(difference {abs(a[bad] - n[bad]):.3g}, allowed {atol + rtol * abs(n[bad]):.3g})"
            )
    return None


def _raise(reason):
    if reason is not None:
        raise AssertionError(reason)


# ------------------------------------------------------------------ the checks ---
def assert_shape(actual, shape, what: str) -> None:
    got = [int(s) for s in actual.shape]
    message = what + ": expected shape {expected}, got shape {actual}"
    if not _emit({"kind": "equal", "actual": str(tuple(got)), "expected": str(tuple(shape)), "message": message}):
        _raise(judge_equal(str(tuple(got)), str(tuple(shape)), message))


def assert_close(actual, expected, what: str, rtol: float = 1e-5, atol: float = 1e-7, own: bool = False) -> None:
    """``actual`` ≈ ``expected`` elementwise; the message names the worst element and both values.

    ``own=True`` when ``expected`` is computed from the student's own results (a
    random draw the student's code made): the grader then compares with it, not
    with what the reference computed. ``expected`` is still computed here, by the
    test, from values the student's code returned (data, never its arithmetic),
    but such a check only verifies a relation between the student's own values
    (∂z/∂log v = ½ (z − μ) for its z), which values made up to fit it satisfy
    too: a test using it must also check the values it starts from against the
    reference (their distribution), as task 4.1's gradient test checks its z.
    """
    a = None if actual is None else as_numpy(actual)
    e = as_numpy(expected)
    record = {"kind": "close", "what": what, "actual": a, "expected": e, "rtol": rtol, "atol": atol, "own": own}
    if not _emit(record):
        _raise(judge_close(a, e, what, rtol, atol))


def assert_equal(actual, expected, message: str) -> None:
    """``actual == expected`` for plain values (a dtype's name, a count, a flag); ``message`` may use
    ``{actual}`` and ``{expected}``."""
    a, e = _plain(actual), _plain(expected)
    if not _emit({"kind": "equal", "actual": a, "expected": e, "message": message}):
        _raise(judge_equal(a, e, message))


def assert_within(value, target, tolerance, what: str) -> None:
    """|value − target| ≤ tolerance (a statistic of random draws)."""
    v = float(value)
    if not _emit({"kind": "within", "actual": v, "expected": float(target), "tolerance": tolerance, "what": what}):
        _raise(judge_within(v, float(target), tolerance, what))


def named(fn, name: str):
    """``fn`` under a readable name, for gradcheck's message ("gradcheck failed for a @ b: …")."""

    def wrapper(*args):
        return fn(*args)

    wrapper.__name__ = name
    return wrapper


def _outputs(fn, xs):
    out = fn(*xs)
    outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    for k, y in enumerate(outs):
        if y is not None and not _is_tensor(y):
            raise TypeError(f"gradcheck: output {k} of {_name(fn)} is a {type(y).__name__}, not a Tensor")
    return outs


def _shape(y) -> tuple:
    """A tensor's shape as the grader sizes arrays by: that of its values, which the child had to send.

    Never the ``.shape`` it reports: a number costs the child nothing, and the grader would allocate it.
    """
    if WORLD is not None and WORLD.is_remote(y):
        return WORLD.as_numpy(y).shape
    return tuple(y.shape)


def _name(fn):
    return getattr(fn, "__name__", type(fn).__name__)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0) -> bool:
    """``minae.gradcheck``'s check (backward against central differences, in float64), as a recorded check.

    The backward's gradients are computed here; the finite differences too when
    the verdict is written here (a run by hand, or the reference's run in the
    grader), so that a grader can compare the student's backward with the
    reference's finite differences.
    """
    xs, checked = [], []
    for i, x in enumerate(inputs if isinstance(inputs, (tuple, list)) else [inputs]):
        if _is_tensor(x) and x.requires_grad:
            x = minae.tensor(as_numpy(x), dtype=minae.float64, requires_grad=True)
            checked.append(i)
        xs.append(x)
    outs = _outputs(fn, xs)
    g = np.random.default_rng(seed)
    weights = [None if y is None else g.standard_normal(_shape(y)) for y in outs]
    roots = [(y, v) for y, v in zip(outs, weights) if y is not None and y.requires_grad]
    analytic = [None] * len(checked)
    if roots:
        grads = minae.grad(
            [y for y, _ in roots],
            [xs[i] for i in checked],
            grad_outputs=[minae.tensor(v, dtype=y.dtype) for y, v in roots],
            allow_unused=True,
        )
        analytic = [None if gx is None else as_numpy(gx) for gx in grads]
    numeric = None
    if recorder is None or numeric_wanted:
        numeric = []
        for i in checked:
            x = xs[i]
            host = as_numpy(x).copy()
            n = np.zeros(host.shape)
            for idx in np.ndindex(*host.shape):
                orig = host[idx]
                total = []
                for step in (eps, -eps):
                    host[idx] = orig + step
                    x.data = minae.tensor(host, dtype=minae.float64).data
                    total.append(
                        sum(float((as_numpy(y) * v).sum()) for y, v in zip(_outputs(fn, xs), weights) if y is not None)
                    )
                host[idx] = orig
                n[idx] = (total[0] - total[1]) / (2 * eps)
            x.data = minae.tensor(host, dtype=minae.float64).data
            numeric.append(n)
    record = {
        "kind": "gradcheck",
        "name": _name(fn),
        "inputs": checked,
        "analytic": analytic,
        "numeric": numeric,
        "atol": atol,
        "rtol": rtol,
    }
    if not _emit(record):
        _raise(judge_gradcheck(record["name"], checked, analytic, numeric, atol, rtol))
    return True


def gradgradcheck(fn, inputs, seed=1, **kwargs) -> bool:
    """Second derivatives: ``gradcheck`` of the function x ↦ ∂⟨v, fn(x)⟩/∂x (its graph built with create_graph)."""

    def first(*xs):
        outs = _outputs(fn, xs)
        g = np.random.default_rng(seed)
        roots = [(y, g.standard_normal(_shape(y))) for y in outs if y is not None and y.requires_grad]
        wrt = [x for x in xs if _is_tensor(x) and x.requires_grad]
        grads = minae.grad(
            [y for y, _ in roots],
            wrt,
            grad_outputs=[minae.tensor(v, dtype=y.dtype) for y, v in roots],
            create_graph=True,
            allow_unused=True,
        )
        return tuple(gx for gx in grads if gx is not None)

    first.__name__ = f"the gradient of {_name(fn)}"
    return gradcheck(first, inputs, **kwargs)


numeric_wanted = True  # the runner turns it off in a student's process when the reference supplies them


# ------------------------------------------------------------------ isolation ---
def helper(name: str):
    """One of ``_helpers.py``'s helpers, next to the code under test (in the child when it is remote)."""
    if WORLD is not None:
        return WORLD.helper(name)
    from minae.homework import _helpers

    return getattr(_helpers, name)


def one_op_backward():
    """Inside: backward calls the single op's ``backward`` directly (minae's run_backward is not used)."""
    return helper("one_op_backward")()


def one_op_gradcheck(fn, inputs, name: str | None = None, **kwargs):
    """``gradcheck(fn, inputs)`` for a function made of one op, without going through run_backward."""
    with one_op_backward():
        return gradcheck(named(fn, name) if name else fn, inputs, **kwargs)


def leading_axes_sum_to():
    """Inside: ``sum_to`` only drops leading axes ((2, 3, 4) -> (3, 4)), without task 1.2's code."""
    return helper("leading_axes_sum_to")()


def default_dtype(dtype):
    """Inside: new tensors and parameters get ``dtype`` (e.g. float64 models for gradcheck)."""
    return helper("default_dtype")(dtype)

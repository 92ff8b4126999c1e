"""Helpers for the homework's tests: checks whose failures read well in the grader's one line.

Each task's tests must test that task alone, so that a student's score for one task
does not hang on another task of the same assignment. Two helpers keep the tests of
assignment 1's ops apart from each other and from task 1.5 (the backward loop):

- ``one_op_gradcheck`` runs ``minae.gradcheck`` on a function made of one op, with
  the gradients taken straight from that op's ``backward`` instead of through
  ``run_backward``;
- ``leading_axes_sum_to`` stands in for ``sum_to`` (task 1.2) where an op's
  backward needs it, for the one case those tests use: dropping leading axes.
"""

from __future__ import annotations

import contextlib

import minae
from minae import autograd
from minae import ops as _ops
from minae.autograd import GradMode, Tensor
from minae.backend import np, to_numpy

__all__ = [
    "as_numpy",
    "assert_close",
    "assert_shape",
    "named",
    "one_op_gradcheck",
    "one_op_backward",
    "leading_axes_sum_to",
    "default_dtype",
]


def as_numpy(x):
    """The values of a tensor, an array or a number, as a float64 NumPy array."""
    if isinstance(x, Tensor):
        x = to_numpy(x.data)
    return np.asarray(x, dtype=np.float64)


def assert_shape(actual, shape, what: str) -> None:
    got = tuple(actual.shape)
    if got != tuple(shape):
        raise AssertionError(f"{what}: expected shape {tuple(shape)}, got shape {got}")


def assert_close(actual, expected, what: str, rtol: float = 1e-5, atol: float = 1e-7) -> None:
    """``actual`` ≈ ``expected`` elementwise; the message names the worst element and both values."""
    if actual is None:
        raise AssertionError(f"{what}: expected a value, got None")
    a, e = as_numpy(actual), as_numpy(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{what}: expected shape {e.shape}, got shape {a.shape}")
    bad = ~np.isclose(a, e, rtol=rtol, atol=atol)
    if bad.any():
        err = np.where(np.isnan(a) | np.isnan(e), np.inf, np.abs(a - e))
        idx = np.unravel_index(np.argmax(np.where(bad, err, -1.0)), a.shape)
        where = f" at index {tuple(int(i) for i in idx)}" if a.ndim else ""
        count = f" ({int(bad.sum())} of {a.size} values differ)" if a.size > 1 else ""
        raise AssertionError(f"{what}: expected {e[idx]:.6g}{where}, got {a[idx]:.6g}{count}")


def named(fn, name: str):
    """``fn`` under a readable name, for gradcheck's message ("gradcheck failed for a @ b: …")."""

    def wrapper(*args):
        return fn(*args)

    wrapper.__name__ = name
    return wrapper


def _one_op_backward(roots, root_grads, retain_graph=False, create_graph=False, accumulate=True, capture=None):
    """Backward through a graph of exactly one op: that op's backward, its gradients to the leaves."""
    (y,), (gy,) = roots, root_grads
    f = y.grad_fn
    if f is None:
        return
    if any(isinstance(x, Tensor) and x.grad_fn is not None for x in f.inputs):
        raise AssertionError("internal error in the test: one_op_gradcheck needs a function made of one op")
    prev = GradMode.enabled
    GradMode.enabled = create_graph
    try:
        grads = f.backward(gy, f.needs_grad)
    finally:
        GradMode.enabled = prev
    if not isinstance(grads, tuple):
        grads = (grads,)
    if len(grads) != len(f.inputs):
        raise AssertionError(f"{f.name()}.backward returned {len(grads)} gradient(s) for {len(f.inputs)} input(s)")
    for x, gx, need in zip(f.inputs, grads, f.needs_grad):
        if not need or gx is None:
            continue
        if tuple(gx.shape) != tuple(x.shape):
            raise AssertionError(
                f"{f.name()}.backward: the gradient for an input of shape {tuple(x.shape)} has shape {tuple(gx.shape)}"
            )
        if gx.dtype != x.dtype:
            gx = gx.astype(x.dtype) if not isinstance(gx, Tensor) else gx.to(x.dtype)
        if capture is not None and id(x) in capture:
            capture[id(x)] = gx if capture[id(x)] is None else capture[id(x)] + gx
        elif accumulate and x.requires_grad:
            x.grad = gx if isinstance(gx, Tensor) else Tensor(gx)


@contextlib.contextmanager
def one_op_backward():
    """Inside: backward calls the single op's ``backward`` directly (minae's run_backward is not used)."""
    original = autograd.run_backward
    autograd.run_backward = _one_op_backward
    try:
        yield
    finally:
        autograd.run_backward = original


def one_op_gradcheck(fn, inputs, name: str | None = None, **kwargs):
    """``minae.gradcheck(fn, inputs)`` for a function made of one op, without going through run_backward."""
    with one_op_backward():
        return minae.gradcheck(named(fn, name) if name else fn, inputs, **kwargs)


def _sum_leading_axes(x, shape):
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return x
    lead = x.ndim - len(shape)
    if lead <= 0 or tuple(x.shape[lead:]) != shape:
        raise AssertionError(f"internal error in the test: no stand-in for sum_to from {tuple(x.shape)} to {shape}")
    data = x.data if isinstance(x, Tensor) else x
    return data.sum(axis=tuple(range(lead)))


@contextlib.contextmanager
def leading_axes_sum_to():
    """Inside: ``minae.ops.sum_to`` only drops leading axes ((2, 3, 4) -> (3, 4)), without task 1.2's code."""
    original = _ops.sum_to
    _ops.sum_to = _sum_leading_axes
    try:
        yield
    finally:
        _ops.sum_to = original


@contextlib.contextmanager
def default_dtype(dtype):
    """Inside: new tensors and parameters get ``dtype`` (e.g. float64 models for gradcheck)."""
    previous = minae.get_default_dtype()
    minae.set_default_dtype(dtype)
    try:
        yield
    finally:
        minae.set_default_dtype(previous)

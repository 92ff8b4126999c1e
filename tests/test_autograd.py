"""The engine: accumulation, minae.grad, tensor hooks, grad modes, requires_grad, dtype rules, numerics, the
leaves' copy-avoidance, repr, the creation functions, anomaly detection and errors (in-place writes, views and
versions: test_inplace.py)."""

import math
import re
import sys

import numpy as np
import pytest
from torch_oracle import HAS_TORCH, torch_or_skip

import minae
from minae import backend, diagnostics


# ------------------------------------------------------------ accumulation ---
def test_gradients_accumulate_over_two_backward_calls(leaf64, device):
    x = leaf64([1.0, -2.0, 3.0], device)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, -4.0, 6.0])
    (x * x * x).sum().backward()  # a second graph: its gradient 3x² adds to the first
    np.testing.assert_allclose(x.grad.numpy(), [2.0 + 3.0, -4.0 + 12.0, 6.0 + 27.0])
    x.grad = None
    (3 * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0, 3.0])


def test_retain_graph_lets_backward_run_twice_and_accumulate(leaf64, device):
    x = leaf64([1.0, 2.0], device)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    expected = 2 * (np.exp([1.0, 2.0]) * ([1.0, 2.0] + np.ones(2)))  # d(x eˣ) = (1 + x) eˣ, twice
    np.testing.assert_allclose(x.grad.numpy(), expected)


def test_backward_through_a_released_graph_raises(leaf64, device):
    x = leaf64([1.0, 2.0], device)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()
    g = minae.grad((x * x).sum(), x)  # minae.grad frees too
    assert g[0].shape == (2,)


def test_reuse_of_the_same_tensor(leaf64, device):
    """micrograd's bug: a = x; b = a + a must give db/dx = 2, not 1."""
    x = leaf64(3.0, device)
    a = x
    b = a + a
    b.backward()
    assert x.grad.item() == 2.0
    x.grad = None
    (a * a).backward()
    assert x.grad.item() == 6.0
    x.grad = None
    y = x
    for _ in range(10):
        y = y + x
    y.backward()
    assert x.grad.item() == 11.0


def test_diamond_graph(leaf64, device):
    """x -> a = eˣ -> (b = 2a, c = sin a) -> d = b c: a's gradient arrives by two paths."""
    v = np.array([0.3, -0.7])
    x = leaf64(v, device)
    a = x.exp()
    d = (a * 2) * a.sin()
    d.sum().backward()
    e = np.exp(v)
    np.testing.assert_allclose(x.grad.numpy(), 2 * e * np.sin(e) + 2 * e * np.cos(e) * e)


def test_gradient_flows_to_every_leaf_once(leaf64, device):
    w, b = leaf64([[1.0, 2.0], [3.0, 4.0]], device), leaf64([0.5, -0.5], device)
    x = leaf64([1.0, -1.0], device, requires_grad=False)
    loss = ((w @ x + b) ** 2).sum()
    loss.backward()
    r = np.array([[1.0, 2.0], [3.0, 4.0]]) @ [1.0, -1.0] + [0.5, -0.5]
    np.testing.assert_allclose(b.grad.numpy(), 2 * r)
    np.testing.assert_allclose(w.grad.numpy(), np.outer(2 * r, [1.0, -1.0]))
    assert x.grad is None


# A .grad assigned by hand was checked only by the next backward: an optimizer step took a (1,) or () one for a (2,)
# weight and broadcast it silently, and an ndarray or an integer tensor as well. The assignment is checked, as
# PyTorch checks it: a tensor (or None) of the tensor's shape, dtype and device, not the tensor itself.
BAD_GRADS = {
    "(1,)": lambda lib, w: lib.ones(1, dtype=lib.float64),
    "()": lambda lib, w: lib.tensor(1.0, dtype=lib.float64),
    "(3, 2)": lambda lib, w: lib.zeros(3, 2, dtype=lib.float64),
    "float32": lambda lib, w: lib.zeros(2, dtype=lib.float32),
    "int64": lambda lib, w: lib.zeros(2, dtype=lib.int64),
    "ndarray": lambda lib, w: np.ones(2),
    "list": lambda lib, w: [1.0, 1.0],
    "itself": lambda lib, w: w,
}


@pytest.mark.parametrize("bad", BAD_GRADS.values(), ids=BAD_GRADS.keys())
def test_a_grad_assigned_by_hand_must_fit_the_tensor(bad):
    for lib in [minae] + ([torch_or_skip()] if HAS_TORCH else []):
        w = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        with pytest.raises((TypeError, RuntimeError), match="grad"):
            w.grad = bad(lib, w)
        assert w.grad is None
        lib.optim.SGD([w], lr=0.1).step()  # nothing to apply
        np.testing.assert_array_equal(w.detach().numpy(), [1.0, 2.0])


def test_a_grad_assigned_by_hand_may_be_a_read_only_view():
    w = minae.tensor([1.0, 2.0], dtype=minae.float64, requires_grad=True)
    w.grad = minae.ones(1, dtype=minae.float64).expand(2)  # read-only: added out of place, as PyTorch
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 5.0])


# -------------------------------------------------------------- minae.grad ---
def test_grad_returns_a_tuple_and_leaves_dot_grad_alone(leaf64, device):
    x, y = leaf64([1.0, 2.0], device), leaf64([3.0, -1.0], device)
    z = (x * y).sum()
    gx, gy = minae.grad(z, [x, y], retain_graph=True)
    np.testing.assert_allclose(gx.numpy(), [3.0, -1.0])
    np.testing.assert_allclose(gy.numpy(), [1.0, 2.0])
    assert x.grad is None and y.grad is None
    single = minae.grad(z, x)
    assert isinstance(single, tuple) and len(single) == 1
    assert not single[0].requires_grad


def test_grad_with_grad_outputs_and_several_outputs(leaf64, device):
    x = leaf64([1.0, 2.0, 3.0], device)
    (g,) = minae.grad(x * x, x, grad_outputs=leaf64([1.0, 0.0, -1.0], device, requires_grad=False))
    np.testing.assert_allclose(g.numpy(), [2.0, 0.0, -6.0])
    with pytest.raises(RuntimeError, match="grad_outputs"):
        minae.grad(x * x, x)
    (g,) = minae.grad([(x * x).sum(), (3 * x).sum()], [x])
    np.testing.assert_allclose(g.numpy(), 2 * np.array([1.0, 2.0, 3.0]) + 3)


def test_grad_of_a_non_leaf(leaf64, device):
    x = leaf64([1.0, -2.0], device)
    y = x * 3
    (g,) = minae.grad((y * y).sum(), y)
    np.testing.assert_allclose(g.numpy(), 2 * np.array([3.0, -6.0]))


def test_grad_unused_input(leaf64, device):
    x, unused = leaf64([1.0], device), leaf64([2.0], device)
    with pytest.raises(RuntimeError, match="input 1.*allow_unused=True"):
        minae.grad((x * 2).sum(), [x, unused])
    gx, gu = minae.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gx.tolist() == [2.0] and gu is None


def test_grad_input_must_require_grad(leaf64, device):
    x, c = leaf64([1.0], device), leaf64([1.0], device, requires_grad=False)
    with pytest.raises(RuntimeError, match="input 1 does not require grad"):
        minae.grad((x * c).sum(), [x, c])


def test_grad_create_graph_gives_a_differentiable_gradient(leaf64, device):
    x = leaf64([0.5, 2.0], device)
    (g,) = minae.grad((x**3).sum(), x, create_graph=True)
    assert g.requires_grad and g.grad_fn is not None
    np.testing.assert_allclose(g.numpy(), 3 * np.array([0.5, 2.0]) ** 2)
    g.sum().backward()  # d/dx Σ 3x² = 6x lands in x.grad
    np.testing.assert_allclose(x.grad.numpy(), 6 * np.array([0.5, 2.0]))


@pytest.mark.parametrize(
    "fn, third",
    [
        (lambda x: x**4, lambda v: 24 * v),
        (minae.sin, lambda v: -np.cos(v)),
        (minae.exp, np.exp),
        (lambda x: x.tanh(), lambda v: -2 * (1 - np.tanh(v) ** 2) * (1 - 3 * np.tanh(v) ** 2)),
    ],
    ids=["x**4", "sin", "exp", "tanh"],
)
def test_third_derivative_by_repeated_grad(leaf64, fn, third, device):
    v = np.array([-1.3, 0.4, 2.0])
    x = leaf64(v, device)
    y = fn(x).sum()
    for _ in range(3):
        (g,) = minae.grad(y, x, create_graph=True)
        y = g.sum()
    np.testing.assert_allclose(g.numpy(), third(v), rtol=1e-10)


def test_mixed_second_derivative(leaf64, device):
    x, y = leaf64(1.5, device), leaf64(-2.0, device)
    f = x * x * y + y.sin()
    (fx,) = minae.grad(f, x, create_graph=True)
    fxy, fxx = minae.grad(fx, [y, x])
    assert fxy.item() == pytest.approx(2 * 1.5)  # ∂²(x²y)/∂x∂y = 2x
    assert fxx.item() == pytest.approx(2 * -2.0)  # ∂²/∂x² = 2y


def test_backward_create_graph_does_not_alias_grads(leaf64, device):
    """With create_graph, a + b sends the same gradient tensor to both: each .grad needs its own."""
    p, q = leaf64([1.0, 2.0], device), leaf64([3.0, 4.0], device)
    y = (p + q).sum()
    y.backward(create_graph=True)
    y.backward()  # accumulate in place: must not touch q.grad through p.grad
    np.testing.assert_array_equal(p.grad.numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(q.grad.numpy(), [2.0, 2.0])


def test_backward_create_graph_then_grad_of_grad(leaf64, device):
    x = leaf64([1.0, 3.0], device)
    (x**3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    (g2,) = minae.grad(x.grad.sum(), x)
    np.testing.assert_allclose(g2.numpy(), [6.0, 18.0])


class _Boom(minae.Function):
    """An op whose backward must never run (to see what minae.grad skips)."""

    def forward(self, x):
        return x * 1.0

    def backward(self, gy, needs_grad):
        raise AssertionError("backward ran on a branch that does not lead to the requested inputs")


def test_grad_skips_branches_that_do_not_reach_the_inputs():
    x = minae.randn(3, requires_grad=True)
    w = minae.randn(3, requires_grad=True)
    y = (_Boom()(w) * x).sum() + (x * x).sum()
    (gx,) = minae.grad(y, x)
    np.testing.assert_allclose(gx.numpy(), w.numpy() + 2 * x.numpy(), rtol=1e-6)
    assert w.grad is None


def test_grad_prunes_inside_an_op_but_keeps_what_is_needed():
    # W feeds the output only through the matmul, x is asked for: W's gradient is never formed
    x = minae.randn(4, 3, requires_grad=True)
    W = minae.randn(3, 2, requires_grad=True)
    (gx,) = minae.grad((x @ _Boom()(W)).sum(), x)
    np.testing.assert_allclose(gx.numpy(), np.broadcast_to(W.numpy().sum(1), (4, 3)), rtol=1e-6)


def test_grad_of_a_tensor_written_in_place_counts_only_the_uses_after_the_write():
    # h = 3x; z = 2(h + 1) uses the old h; h += 1; L = Σz + Σh²: ∂L/∂h (the new h) = 2h, not 2h + 2
    x = minae.tensor([1.0, 2.0], dtype=minae.float64, requires_grad=True)
    h = x * 3
    z = (h + 1) * 2
    h.add_(1)
    loss = z.sum() + (h * h).sum()
    g_h, g_x = minae.grad(loss, [h, x], retain_graph=True)
    np.testing.assert_allclose(g_h.numpy(), [8.0, 14.0])
    np.testing.assert_allclose(g_x.numpy(), [30.0, 48.0])
    (unused,) = minae.grad(z.sum(), [h], allow_unused=True)  # z was computed from the old h only
    assert unused is None
    # written through a view: the base's uses before the write are not its gradient either
    h = x * 3
    z = (h + 1) * 2
    h[0:1].mul_(x[0:1])
    (g_h,) = minae.grad(z.sum() + (h * h).sum(), [h])
    np.testing.assert_allclose(g_h.numpy(), [6.0, 12.0])


# ------------------------------------------------------------------- hooks ---
def _hooked_leaf(lib, values):
    """Run ``(x·x).sum() + x.sum()`` with a hook on the leaf x that records its gradient and triples it."""
    x = lib.tensor(values, dtype=lib.float64, requires_grad=True)
    seen = []
    handle = x.register_hook(lambda g: seen.append(g.detach().clone()) or g * 3)
    ((x * x).sum() + x.sum()).backward()
    return x, seen, handle


def test_a_leaf_hook_runs_once_on_the_summed_gradient_and_replaces_it():
    x, seen, _ = _hooked_leaf(minae, [1.0, 2.0])
    # two paths reach x: 2x and 1; the hook sees their sum once
    assert len(seen) == 1 and np.allclose(seen[0].numpy(), [3.0, 5.0])
    assert np.allclose(x.grad.numpy(), [9.0, 15.0])


def test_a_leaf_hook_matches_torch():
    torch = torch_or_skip()
    x, seen, _ = _hooked_leaf(minae, [1.0, -2.0, 0.5])
    tx, tseen, _ = _hooked_leaf(torch, [1.0, -2.0, 0.5])
    assert len(seen) == len(tseen) == 1
    assert np.allclose(seen[0].numpy(), tseen[0].numpy()) and np.allclose(x.grad.numpy(), tx.grad.numpy())


def test_a_non_leaf_hook_changes_what_flows_below_and_its_retained_grad():
    for lib in [minae] + ([torch_or_skip()] if HAS_TORCH else []):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        y = x * 2
        y.retain_grad()
        y.register_hook(lambda g: g * 10)
        (y * y).sum().backward()
        assert np.allclose(y.grad.detach().numpy(), [40.0, 80.0]), lib.__name__
        assert np.allclose(x.grad.detach().numpy(), [80.0, 160.0]), lib.__name__


def test_a_hook_that_returns_none_keeps_the_gradient_and_a_removed_hook_is_not_called():
    x = minae.tensor([1.0, 2.0], requires_grad=True)
    calls = []
    x.register_hook(lambda g: calls.append(1))
    handle = x.register_hook(lambda g: g * 0)
    (x * 3).sum().backward()
    assert calls == [1] and np.allclose(x.grad.numpy(), 0.0)
    handle.remove()
    handle.remove()  # a second remove does nothing
    x.grad = None
    (x * 3).sum().backward()
    assert calls == [1, 1] and np.allclose(x.grad.numpy(), 3.0)


def test_hooks_apply_to_grad_and_under_create_graph():
    x = minae.tensor([1.5, -0.5], dtype=minae.float64, requires_grad=True)
    x.register_hook(lambda g: g * 2)
    (g,) = minae.grad((x**3).sum(), x, create_graph=True)
    assert np.allclose(g.numpy(), 2 * 3 * x.numpy() ** 2)
    (gg,) = minae.grad(g.sum(), x)  # the hook's ×2 is part of the graph, and runs again on the second gradient
    assert np.allclose(gg.numpy(), 2 * 2 * 6 * x.numpy())


def test_register_hook_refuses_a_tensor_that_does_not_require_grad_and_a_hook_returning_a_wrong_shape():
    with pytest.raises(RuntimeError, match="does not require grad"):
        minae.tensor([1.0]).register_hook(lambda g: g)
    x = minae.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g.sum())
    with pytest.raises(RuntimeError, match=r"shape \(\)"):
        (x * 2).sum().backward()


# A hook that returned another dtype was taken silently (its float64 gradient cast back to float32, a float32 one
# flowing on below a float64 tensor): PyTorch raises "hook has changed the type of value", as for a shape.
@pytest.mark.parametrize("leaf", [True, False])
@pytest.mark.parametrize("dtype, other", [("float32", "float64"), ("float64", "float32")])
def test_a_hook_that_changes_the_dtype_of_the_gradient_raises(leaf, dtype, other):
    for lib in [minae] + ([torch_or_skip()] if HAS_TORCH else []):
        x = lib.tensor([1.0, 2.0], dtype=getattr(lib, dtype), requires_grad=True)
        y = x if leaf else x * 2
        y.register_hook(lambda g, to=getattr(lib, other): g.to(to))
        with pytest.raises(RuntimeError, match="type|dtype"):
            (y * y).sum().backward()


def test_a_hook_sees_the_gradient_in_the_tensors_dtype_where_a_float64_constant_promoted_the_path():
    for lib in [minae] + ([torch_or_skip()] if HAS_TORCH else []):
        x = lib.tensor([1.0, 2.0], requires_grad=True)  # float32
        seen = []
        x.register_hook(lambda g, seen=seen: seen.append(g.dtype) or g * 2)
        (x * lib.tensor([1.0, 3.0], dtype=lib.float64)).sum().backward()
        assert seen == [lib.float32] and x.grad.dtype == lib.float32, lib.__name__
        np.testing.assert_allclose(x.grad.numpy(), [2.0, 6.0])


# -------------------------------------------------------------- grad modes ---
def test_no_grad_as_context_manager(leaf64, device):
    x = leaf64([1.0], device)
    with minae.no_grad():
        assert not minae.is_grad_enabled()
        y = x * 2
    assert minae.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert (x * 2).requires_grad


def test_no_grad_as_decorator_and_restores_on_error(leaf64, device):
    x = leaf64([1.0], device)

    @minae.no_grad()
    def double(t):
        """Doubles."""
        assert not minae.is_grad_enabled()
        return t * 2

    assert not double(x).requires_grad
    assert double.__name__ == "double" and double.__doc__ == "Doubles."
    assert minae.is_grad_enabled()
    with pytest.raises(ZeroDivisionError):
        with minae.no_grad():
            raise ZeroDivisionError
    assert minae.is_grad_enabled()


def test_enable_grad_inside_no_grad(leaf64, device):
    x = leaf64([1.0], device)
    with minae.no_grad():
        with minae.enable_grad():
            y = x * 2
        z = x * 2
    assert y.requires_grad and not z.requires_grad

    @minae.enable_grad()
    def f(t):
        return t * 3

    with minae.no_grad():
        assert f(x).requires_grad


def test_set_grad_enabled(leaf64, device):
    x = leaf64([1.0], device)
    with minae.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad
    minae.set_grad_enabled(False)  # as a plain call, like PyTorch
    try:
        assert not minae.is_grad_enabled()
    finally:
        minae.set_grad_enabled(True)
    assert minae.is_grad_enabled()


# ----------------------------------------------- requires_grad and friends ---
def test_requires_grad_propagation(leaf64, device):
    a = leaf64([1.0, 2.0], device)
    b = leaf64([3.0, 4.0], device, requires_grad=False)
    assert a.is_leaf and a.grad_fn is None
    c = a * b
    assert c.requires_grad and not c.is_leaf and type(c.grad_fn).__name__ == "Mul"
    assert not (b * 2).requires_grad and (b * 2).grad_fn is None
    assert (b + a).requires_grad
    with pytest.raises(TypeError, match="floating"):
        minae.tensor([1, 2], requires_grad=True)
    assert b.requires_grad_() is b and b.requires_grad
    with pytest.raises(RuntimeError, match="leaf"):
        c.requires_grad_(False)


# Assigning the attribute, as PyTorch code does (p.requires_grad = False to freeze a layer), took anything:
# y.requires_grad = False on a non-leaf silently cut the gradient of all computed from y after it, and True on an
# integer tensor was accepted. It is checked as requires_grad_() is (PyTorch raises for both).
def test_assigning_requires_grad_is_checked_as_requires_grad_is():
    for lib in [minae] + ([torch_or_skip()] if HAS_TORCH else []):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        y = x * 2
        with pytest.raises(RuntimeError, match="leaf"):
            y.requires_grad = False
        assert y.requires_grad
        (y * 3).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
        with pytest.raises((TypeError, RuntimeError), match="floating"):
            lib.tensor([1, 2]).requires_grad = True
        frozen = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        frozen.requires_grad = False  # a leaf: allowed, both ways
        assert not (frozen * 2).requires_grad
        frozen.requires_grad = True
        (frozen * frozen).sum().backward()
        np.testing.assert_allclose(frozen.grad.numpy(), [2.0, 4.0])


def test_detach(leaf64, device):
    x = leaf64([1.0, 2.0], device)
    y = (x * 2).detach()
    assert not y.requires_grad and y.grad_fn is None
    np.testing.assert_array_equal(y.numpy(), [2.0, 4.0])
    d = x.detach()
    with backend.on(x.device):  # raw arrays: CuPy writes on the current GPU
        d.data[0] = 10.0  # shares memory, like PyTorch
        assert x.tolist()[0] == 10.0
        x.data[0] = 1.0
    (x * x.detach()).sum().backward()  # the detached factor is a constant
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2.0])


def test_retain_grad(leaf64, device):
    x = leaf64([1.0, -2.0], device)
    y = x * 2
    y.retain_grad()
    w = x * 3
    (y * y + w).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), 2 * np.array([2.0, -4.0]))
    assert w.grad is None  # not retained
    np.testing.assert_allclose(x.grad.numpy(), 8 * np.array([1.0, -2.0]) + 3)
    with pytest.raises(RuntimeError, match="does not require grad"):
        leaf64([1.0], device, requires_grad=False).retain_grad()


def test_setitem_needs_no_grad(leaf64, device):
    x = leaf64([1.0, 2.0, 3.0], device)
    with pytest.raises(RuntimeError, match="no_grad"):
        x[0] = 5.0
    with minae.no_grad():
        x[[0, 2]] = minae.tensor([5.0, 6.0], dtype=minae.float64, device=device)
    assert x.tolist() == [5.0, 2.0, 6.0]


# ------------------------------------------------------------ a long chain ---
def test_a_chain_of_100000_ops_under_the_default_recursion_limit(device):
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # Python's default
    try:
        x = minae.tensor([1.0, 2.0], device=device, requires_grad=True)
        y = x
        for i in range(100_000):
            y = y * 1.0 if i % 2 else y + 1.0
        y.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])
        np.testing.assert_array_equal(y.numpy(), [50_001.0, 50_002.0])
        # a graph dropped without backward is freed without deep recursion too
        z = x
        for _ in range(100_000):
            z = z * 1.0
        del z, y
    finally:
        sys.setrecursionlimit(limit)


# ------------------------------------------------------------- dtype rules ---
UNARY_AND_REDUCTIONS = [
    lambda x: x + 2,
    lambda x: 2 + x,
    lambda x: x - 1.5,
    lambda x: 1.5 - x,
    lambda x: x * 3,
    lambda x: 0.5 * x,
    lambda x: x / 7,
    lambda x: 7 / x,
    lambda x: x**2,
    lambda x: x**0.5,
    lambda x: 2**x,
    lambda x: 2.5**x,
    lambda x: -x,
    lambda x: x * np.float64(2.0),
    lambda x: np.float64(2.0) * x,
    lambda x: x + np.float64(1.0),
    lambda x: np.float64(1.0) - x,
    lambda x: x / np.float64(3.0),
    lambda x: np.float64(3.0) / x,
    lambda x: x ** np.float64(2.0),
    lambda x: np.float64(2.0) ** x,
    lambda x: x * np.int64(2),
    minae.exp,
    minae.log,
    minae.sqrt,
    minae.abs,
    minae.tanh,
    minae.sigmoid,
    minae.relu,
    minae.softplus,
    minae.sin,
    minae.cos,
    lambda x: minae.leaky_relu(x, 0.2),
    lambda x: minae.leaky_relu(x, np.float64(0.2)),
    lambda x: minae.clamp(x, 0.5, 1.5),
    lambda x: minae.clamp(x, np.float64(0.5)),
    lambda x: minae.clamp(x, max=np.float64(1.5)),
    lambda x: minae.maximum(x, 1.0),
    lambda x: minae.minimum(np.float64(1.0), x),
    lambda x: minae.where(x > 1, x, 0.0),
    lambda x: minae.where(x > 1, np.float64(0.0), x),
    lambda x: x.sum(),
    lambda x: x.mean(0),
    lambda x: x.var(),
    lambda x: x.var(1, correction=0),
    lambda x: x.max(),
    lambda x: x.min(1).values,
    lambda x: x.logsumexp(1),
    lambda x: x @ x.T,
    lambda x: x[0, [1, 1]],
    lambda x: x[x > 1],
    lambda x: minae.cat([x, x], 1),
    lambda x: minae.stack([x, x]),
    lambda x: x.reshape(-1).unsqueeze(0).expand(2, 6).T.flatten(),
    lambda x: x / (x + 1),
    lambda x: x**x,
    lambda x: minae.maximum(x, x.T.T * 0.5) - minae.minimum(x, x[:1]),
    lambda x: x.to(minae.float64).to(x.dtype) * x.clone(),
]


@pytest.mark.parametrize("dtype", [minae.float32, minae.float64])
def test_ops_keep_the_dtype_forward_and_backward(dtype, device):
    """float32 stays float32 under Python and NumPy scalars; float64 stays float64, gradients included."""
    for k, fn in enumerate(UNARY_AND_REDUCTIONS):
        x = minae.tensor([[0.5, 1.25, 2.0], [1.5, 0.75, 1.1]], dtype=dtype, device=device, requires_grad=True)
        y = fn(x)
        assert y.dtype == dtype, f"op {k} turned {dtype} into {y.dtype}"
        (g,) = minae.grad(y.sum(), x, retain_graph=True)
        assert g.dtype == dtype, f"the gradient of op {k} is {g.dtype}, not {dtype}"
        (gg,) = minae.grad((y * y).sum(), x, create_graph=True)
        if gg.requires_grad:
            (g2,) = minae.grad(gg.sum(), x, allow_unused=True)
            assert g2 is None or g2.dtype == dtype, f"the second derivative of op {k} is {g2.dtype}"


def test_a_float64_array_promotes_but_the_gradient_keeps_the_leaf_dtype(leaf64, device):
    """NumPy's (and PyTorch's) promotion: float32 ⊗ float64 array -> float64; .grad matches its tensor."""
    x = minae.tensor([1.0, 2.0], device=device, requires_grad=True)
    c = leaf64([3.0, 4.0], device, requires_grad=False).data
    y = x * c
    assert y.dtype == minae.float64
    y.sum().backward()
    assert x.grad.dtype == minae.float32
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])
    (g,) = minae.grad((x.exp() * c).sum(), x)
    assert g.dtype == minae.float32


@pytest.mark.parametrize("spec", [minae.float64, np.float64, "float64", np.dtype("float64"), float])
def test_dtype_argument_forms(spec, device):
    assert minae.tensor([1.0], dtype=spec, device=device).dtype == np.float64
    assert minae.zeros(2, dtype=spec, device=device).dtype == np.float64
    assert minae.randn(2, dtype=spec, device=device).dtype == np.float64
    assert minae.ones(1, device=device).to(dtype=spec).dtype == np.float64


def test_unknown_dtype_raises(device):
    with pytest.raises(TypeError, match="floaty"):
        minae.zeros(2, dtype="floaty", device=device)


def test_default_dtype(device):
    assert minae.tensor([1.0, 2.0], device=device).dtype == minae.float32
    assert minae.tensor(1.5, device=device).dtype == minae.float32
    assert minae.tensor([1, 2], device=device).dtype == minae.int64
    assert minae.tensor([True, False], device=device).dtype == minae.bool_
    assert minae.tensor(np.arange(3.0), device=device).dtype == minae.float64  # an array keeps its dtype
    assert minae.tensor(np.float64(2.0), device=device).dtype == minae.float64
    minae.set_default_dtype(minae.float64)
    assert minae.tensor([1.0], device=device).dtype == minae.float64
    assert minae.randn(2, device=device).dtype == minae.float64
    with pytest.raises(TypeError, match="floating"):
        minae.set_default_dtype(minae.int64)


def test_to_accepts_dtype_names_and_numpy_sees_values():
    x = minae.tensor([1.0, 2.0])
    assert x.to("float64").dtype == np.float64
    assert x.to("cpu") is x
    np.testing.assert_array_equal(np.asarray(x), [1.0, 2.0])
    assert np.asarray(x).dtype == np.float32


# ---------------------------------------------------------------- numerics ---
def test_power_zero_has_zero_gradient_at_zero():
    x = minae.tensor([0.0, 1.0, -2.0], requires_grad=True)
    (x**0).sum().backward()
    assert np.all(x.grad.numpy() == 0)


# ---------------------------------- the leaves' copy-avoidance (fast path) ---
def test_a_leaf_keeps_its_first_gradient_without_a_copy_only_when_no_one_else_holds_it(leaf64):
    def grads(retain):
        a, b, w = leaf64([1.0, 2.0]), leaf64([3.0, 4.0]), leaf64([[1.0, 2.0], [3.0, 4.0]])
        loss = ((a + b) * 2).sum() + (a @ w).sum() + (w * w).sum()
        loss.backward(retain_graph=retain)
        return a, b, w

    fast, plain = grads(False), grads(True)  # retain_graph=True always copies
    for f, p in zip(fast, plain):
        np.testing.assert_array_equal(f.grad.numpy(), p.grad.numpy())
    a, b, w = fast
    assert not np.shares_memory(a.grad.data, b.grad.data)  # Add's backward sends one array to both
    a.grad.data += 1  # a later accumulation writes into one .grad only
    np.testing.assert_array_equal(b.grad.numpy(), plain[1].grad.numpy())


# -------------------------------------------------------- repr and leaving ---
def test_repr_shows_values_dtype_and_grad_fn():
    r = repr(minae.tensor([1.5, -2.0]))
    assert r.startswith("tensor(") and "1.5" in r and "-2." in r
    assert "dtype" not in r and "device" not in r and "grad" not in r
    assert "dtype=float64" in repr(minae.tensor([1.5], dtype=minae.float64))
    assert "dtype" not in repr(minae.tensor([1, 2]))  # int64, the integer default
    assert "dtype=int32" in repr(minae.tensor([1, 2], dtype=minae.int32))
    x = minae.tensor([1.0, 2.0], requires_grad=True)
    assert "requires_grad=True" in repr(x)
    r = repr(x * 2)
    assert "grad_fn=<MulBackward>" in r and "2." in r and "4." in r
    assert repr(minae.tensor(3.0)) == "tensor(3.)"
    lines = repr(minae.tensor([[1.0, 2.0], [3.0, 4.0]])).splitlines()
    assert lines[0].index("[1.") == lines[1].index("[3.")  # rows line up


def test_repr_shows_a_cuda_device(device):
    if device == "cpu":
        pytest.skip("the device appears in repr only off the CPU")
    assert f"device='{device}'" in repr(minae.ones(2, device=device))


def test_item_numpy_tolist(device):
    x = minae.tensor([[1.0, 2.5]], device=device, requires_grad=True)
    assert x.tolist() == [[1.0, 2.5]]
    a = x.numpy()
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    np.testing.assert_array_equal(a, [[1.0, 2.5]])
    s = x.sum()
    assert s.item() == 3.5 and isinstance(s.item(), float)
    assert float(s) == 3.5 and int(minae.tensor([7], device=device)) == 7
    assert minae.tensor(4, device=device).item() == 4 and isinstance(minae.tensor(4).item(), int)
    with pytest.raises(ValueError, match=r"\(1, 2\)"):
        x.item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(x)
    assert x.shape == (1, 2) and x.ndim == 2 and x.numel() == 2 and len(x) == 1 and x.size(1) == 2


def test_comparisons_give_boolean_tensors_without_grad(leaf64, device):
    a = np.array([0.5, 1.0, 2.0])
    x = leaf64(a, device)
    raw = leaf64([1.0, 1.0, 1.0], device, requires_grad=False).data
    cases = [
        (x > 1, a > 1),
        (1 < x, 1 < a),
        (x >= 1.0, a >= 1),
        (x < raw, a < 1),
        (raw <= x, 1 <= a),
        (x == 1, a == 1),
        (x != x * 2, a != a * 2),
        ((x > 0.6) & (x < 1.5), (a > 0.6) & (a < 1.5)),
        ((x < 0.6) | (x > 1.5), (a < 0.6) | (a > 1.5)),
        (~(x > 1), ~(a > 1)),
    ]
    for got, expected in cases:
        assert isinstance(got, minae.Tensor) and got.dtype == minae.bool_
        assert not got.requires_grad and got.grad_fn is None
        np.testing.assert_array_equal(got.numpy(), expected)
    assert {x: 1}[x] == 1  # tensors hash by identity


# ---------------------------------------------------------------- creation ---
def test_tensor_copies_its_data(device):
    a = np.array([1.0, 2.0], dtype=np.float32)
    t = minae.tensor(a, device=device)
    a[0] = 9.0
    assert t.tolist() == [1.0, 2.0]
    u = minae.tensor(t)
    with backend.on(u.device):  # raw arrays: CuPy writes on the current GPU
        u.data[1] = 7.0
    assert t.tolist() == [1.0, 2.0]
    f = minae.from_numpy(a)
    assert np.shares_memory(f.data, a)


def test_filled_creation_functions(device):
    for make, value in [(minae.zeros, 0.0), (minae.ones, 1.0)]:
        for t in (make(2, 3, device=device), make((2, 3), device=device)):
            assert t.shape == (2, 3) and t.dtype == minae.float32 and t.device == device
            assert np.all(t.numpy() == value)
    f = minae.full((2, 2), 7.5, device=device)
    assert f.shape == (2, 2) and f.dtype == minae.float32 and np.all(f.numpy() == 7.5)
    assert minae.zeros(3, requires_grad=True, device=device).requires_grad
    x = minae.tensor([[1, 2]], dtype=minae.float64, device=device)
    for like, value in [(minae.zeros_like, 0), (minae.ones_like, 1), (lambda t: minae.full_like(t, 3), 3)]:
        y = like(x)
        assert y.shape == (1, 2) and y.dtype == minae.float64 and np.all(y.numpy() == value)
    assert minae.zeros_like(minae.tensor([1, 2])).dtype == minae.int64
    assert np.array_equal(minae.eye(3, device=device).numpy(), np.eye(3))
    with pytest.raises(ValueError, match="non-negative"):
        minae.zeros(-1, device=device)


def test_ranges(device):
    a = minae.arange(5, device=device)
    assert a.dtype == minae.int64 and a.tolist() == [0, 1, 2, 3, 4]
    assert minae.arange(2, 8, 3, device=device).tolist() == [2, 5]
    f = minae.arange(0, 1, 0.25, device=device)
    assert f.dtype == minae.float32 and f.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert minae.arange(3, dtype=minae.float64, device=device).dtype == minae.float64
    s = minae.linspace(-1, 1, 5, device=device)
    assert s.dtype == minae.float32
    np.testing.assert_allclose(s.numpy(), np.linspace(-1, 1, 5))


def test_random_creation_functions(device):
    u = minae.rand(2000, device=device)
    assert u.shape == (2000,) and u.dtype == minae.float32
    assert 0 <= u.numpy().min() and u.numpy().max() < 1 and abs(u.numpy().mean() - 0.5) < 0.05
    n = minae.randn(4000, dtype=minae.float64, device=device)
    assert n.dtype == minae.float64 and abs(n.numpy().mean()) < 0.1 and abs(n.numpy().std() - 1) < 0.1
    assert minae.randn(2, 3, device=device).shape == (2, 3) and minae.rand((3, 1), device=device).shape == (3, 1)
    r = minae.randint(3, 7, (500,), device=device)
    assert r.dtype == minae.int64 and set(r.tolist()) == {3, 4, 5, 6}
    assert minae.randint(4, size=(2, 2), device=device).shape == (2, 2)
    p = minae.randperm(10, device=device)
    assert p.dtype == minae.int64 and sorted(p.tolist()) == list(range(10))
    assert minae.randn(3, requires_grad=True, device=device).requires_grad


def test_manual_seed_reproduces_on_the_same_device(device):
    def draw():
        return (
            minae.rand(5, device=device).tolist(),
            minae.randn(2, 2, device=device).tolist(),
            minae.randint(0, 100, (5,), device=device).tolist(),
            minae.randperm(8, device=device).tolist(),
        )

    minae.manual_seed(123)
    first = draw()
    minae.manual_seed(123)
    assert draw() == first
    minae.manual_seed(124)
    assert draw() != first
    with pytest.raises(ValueError, match="non-negative"):
        minae.manual_seed(-1)


def test_default_device_setting_and_environment(monkeypatch):
    minae.set_default_device("cpu")
    assert minae.get_default_device() == "cpu" and minae.zeros(1).device == "cpu"
    monkeypatch.setattr(backend, "_default_device", None)
    monkeypatch.setenv("MINAE_DEVICE", "cpu")
    assert backend.default_device() == "cpu"
    monkeypatch.setattr(backend, "_default_device", None)
    monkeypatch.setenv("MINAE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="'tpu'"):
        minae.zeros(1)


def test_default_device_cuda(device, monkeypatch):
    if device == "cpu":
        pytest.skip("needs a GPU")
    minae.set_default_device(device)
    assert minae.zeros(2).device == device and minae.randn(2).device == device
    monkeypatch.setattr(backend, "_default_device", None)
    monkeypatch.setenv("MINAE_DEVICE", device)
    assert minae.ones(1).device == device


def test_minae_device_cuda_without_a_gpu(monkeypatch):
    if minae.cuda.is_available():
        pytest.skip("a GPU is present")
    monkeypatch.setattr(backend, "_default_device", None)
    monkeypatch.setenv("MINAE_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match='pip install "minae\\[cuda\\]"|no (CUDA device|GPU)'):
        minae.zeros(1)


# ---------------------------------------------------------- detect_anomaly ---
def test_detect_anomaly_in_forward_names_the_op_and_line(leaf64, device):
    x = leaf64([-1.0, 1.0], device)
    with minae.detect_anomaly(), np.errstate(invalid="ignore"):
        with pytest.raises(minae.AnomalyError) as info:
            minae.log(x)  # the line the error must point at
    message = str(info.value)
    assert "Log" in message and "forward" in message
    assert "test_autograd.py" in message and "minae.log(x)  # the line" in message


def test_detect_anomaly_in_backward_names_the_op_and_line(leaf64, device):
    x = leaf64([0.0, 4.0], device)
    with minae.detect_anomaly(), np.errstate(divide="ignore", invalid="ignore"):
        y = x.sqrt()  # forward is finite; backward divides by 2√0
        loss = (y * 3).sum()
        with pytest.raises(minae.AnomalyError) as info:
            loss.backward()
    message = str(info.value)
    assert "Sqrt" in message and "backward" in message
    assert "test_autograd.py" in message and "y = x.sqrt()" in message


def test_detect_anomaly_zero_times_inf_in_backward(leaf64, device):
    x = leaf64([0.0, 1.0], device)
    with minae.detect_anomaly(), np.errstate(divide="ignore", invalid="ignore"):
        y = x.sqrt() * 0  # forward: 0; backward: the incoming 0 times ∂√x/∂x = ∞ at 0
        with pytest.raises(minae.AnomalyError, match="Sqrt"):
            y.sum().backward()


def test_anomaly_mode_is_off_outside_the_context(leaf64, device):
    x = leaf64([-1.0], device)
    with np.errstate(invalid="ignore"):
        assert math.isnan(minae.log(x).item())
        with minae.detect_anomaly():
            pass
        assert math.isnan(minae.log(x).item())


# ------------------------------------------------------ errors: backward's ---
def test_backward_on_a_non_scalar_needs_gradient(leaf64, device):
    x = leaf64([1.0, 2.0, 3.0], device)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"gradient.*non-scalar.*\(3,\)"):
        y.backward()
    y.backward(gradient=leaf64([1.0, 0.5, -1.0], device, requires_grad=False), retain_graph=True)
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 1.0, -2.0])
    y.backward(gradient=[1.0, 1.0, 1.0])  # lists and arrays work too
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 3.0, 0.0])
    with pytest.raises(RuntimeError, match=r"\(2,\).*\(3,\)"):
        (x * 2).backward(gradient=[1.0, 1.0])


def test_backward_on_a_tensor_without_grad_raises(leaf64, device):
    x = leaf64([1.0], device, requires_grad=False)
    with pytest.raises(RuntimeError, match="does not require grad"):
        (x * 2).sum().backward()


def test_backward_gradient_dtype_follows_the_output(leaf64, device):
    x = minae.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x * 3).backward(gradient=leaf64([1.0, 1.0], device, requires_grad=False))
    assert x.grad.dtype == minae.float32
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


# ---------------------------------------------- errors: shapes and devices ---
def test_broadcast_mismatch_names_both_shapes_and_the_op(device):
    x, y = minae.ones(2, 3, device=device), minae.ones(4, device=device)
    with pytest.raises(ValueError, match=r"Add.*\(2, 3\).*\(4,\)"):
        x + y
    with pytest.raises(ValueError, match=r"Mul.*\(2, 3\).*array of shape \(4,\)"):
        x * y.data
    with pytest.raises(ValueError, match=r"Maximum.*\(2, 3\).*\(4,\)"):
        minae.maximum(x, y)


def test_matmul_mismatch_names_both_shapes_and_the_op(device):
    x, y = minae.ones(2, 3, device=device), minae.ones(4, 5, device=device)
    with pytest.raises(ValueError, match=r"MatMul.*\(2, 3\).*\(4, 5\)"):
        x @ y
    with pytest.raises(ValueError, match="at least one dimension"):
        minae.tensor(2.0, device=device) @ x


class _FakeGpuArray(np.ndarray):
    """A NumPy array that claims to live on cuda:0 (no GPU is needed to test the check)."""


def test_mixing_devices_names_both(monkeypatch):
    real = diagnostics.array_device
    monkeypatch.setattr(
        diagnostics, "array_device", lambda a: backend.Device("cuda", 0) if isinstance(a, _FakeGpuArray) else real(a)
    )
    x = minae.ones(2, 3, requires_grad=True)
    gpu = np.ones(3).view(_FakeGpuArray)
    with pytest.raises(RuntimeError, match=r"Add.*same device.*\(2, 3\) on cpu.*\(3,\) on cuda:0"):
        x + gpu
    with pytest.raises(RuntimeError, match=r"Mul.*on cuda:0.*on cpu"):
        gpu * x


def test_mixing_real_devices(device):
    if device == "cpu":
        pytest.skip("needs a GPU: with the CPU alone there is no second device to mix")
    x = minae.ones(3, device=device)
    with pytest.raises(RuntimeError, match="same device"):
        x + np.ones(3)
    with pytest.raises(RuntimeError, match="same device"):
        x * minae.ones(3, device="cpu")
    y = minae.tensor([1.0, 2.0], requires_grad=True)
    z = y.to(device)
    assert z.device == device and z.requires_grad
    (z * z).sum().backward()
    assert y.grad.device == "cpu"
    np.testing.assert_allclose(y.grad.numpy(), [2.0, 4.0])
    assert z.cpu().device == "cpu" and y.cuda().device == "cuda:0"


def test_asking_for_cuda_without_it_raises_one_clear_error():
    if minae.cuda.is_available():
        pytest.skip("a GPU is present: CUDA works here")
    assert minae.cuda.device_count() == 0
    hint = re.compile(r'pip install "minae\[cuda\]"|no (CUDA device|GPU)')
    for ask in (
        lambda: minae.ones(2).to("cuda"),
        lambda: minae.ones(2).cuda(),
        lambda: minae.zeros(2, device="cuda"),
        lambda: minae.tensor([1.0], device="cuda:0"),
        lambda: minae.set_default_device("cuda"),
    ):
        with pytest.raises(RuntimeError, match=hint):
            ask()

"""The parts of PyTorch's tensor API a student expects that minae lacked: tensor hooks, ``//`` and ``%`` (and
their in-place forms), ``broadcast_shapes``, ``as_tensor``, ``detach_``.

Each test asserts the value (or the error) without PyTorch, and compares with PyTorch where it is installed.
"""

import numpy as np
import pytest

import minae


def _torch():
    return pytest.importorskip("torch")


# ------------------------------------------------------------------ hooks ---
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
    torch = _torch()
    x, seen, _ = _hooked_leaf(minae, [1.0, -2.0, 0.5])
    tx, tseen, _ = _hooked_leaf(torch, [1.0, -2.0, 0.5])
    assert len(seen) == len(tseen) == 1
    assert np.allclose(seen[0].numpy(), tseen[0].numpy()) and np.allclose(x.grad.numpy(), tx.grad.numpy())


def test_a_non_leaf_hook_changes_what_flows_below_and_its_retained_grad():
    for lib in [minae] + ([_torch()] if _has_torch() else []):
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


def _has_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------- // and % ---
PAIRS = [([5.5, -3.2, 7.0, -7.0], 2.0), ([5.5, -3.2, 7.0, -7.0], -2.0), ([7, -7, 3], 2), ([7, -7, 3], -2)]


@pytest.mark.parametrize("a, b", PAIRS)
def test_floor_divide_and_remainder_round_toward_minus_infinity(a, b):
    ta = minae.tensor(a)
    for got, want in [(ta // b, np.floor_divide(a, b)), (ta % b, np.remainder(a, b)), (b % ta, np.remainder(b, a))]:
        assert np.allclose(got.numpy(), want)
    assert np.allclose(minae.floor_divide(ta, b).numpy(), np.floor_divide(a, b))
    assert np.allclose(minae.remainder(ta, b).numpy(), np.remainder(a, b))
    if _has_torch():
        import torch

        tt = torch.tensor(a)
        assert np.allclose((ta // b).numpy(), (tt // b).numpy()) and np.allclose((ta % b).numpy(), (tt % b).numpy())


def test_remainder_gradient_and_floor_divide_has_none(leaf64):
    a, b = leaf64([5.5, -3.2, 0.7]), leaf64([2.0, 3.0, -0.4])
    assert minae.gradcheck(lambda a, b: a % b, (a, b))
    (a % b).sum().backward()
    assert np.allclose(a.grad.numpy(), 1.0) and np.allclose(b.grad.numpy(), -np.floor(a.numpy() / b.numpy()))
    y = a // 2
    assert y.requires_grad
    with pytest.raises(RuntimeError, match="no derivative"):
        y.sum().backward()


def test_integer_division_by_zero_raises():
    for op in (lambda t: t // 0, lambda t: t % 0, lambda t: 3 // (t * 0)):
        with pytest.raises(ZeroDivisionError):
            op(minae.tensor([1, 2]))
    assert np.isinf((minae.tensor([1.0]) // 0).numpy()).all()  # floats: inf, as in PyTorch


def test_in_place_floor_divide_and_remainder():
    t = minae.tensor([7, -7, 3])
    t //= 2
    assert t.tolist() == [3, -4, 1]
    t %= 3
    assert t.tolist() == [0, 2, 1]
    with pytest.raises(TypeError, match="cannot be written"):
        t //= 2.5  # a float result into an int tensor (PyTorch raises too)
    x = minae.tensor([5.5, -3.2], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        x %= 2
    y = x * 1
    y %= 2  # recorded: the gradient flows through it
    y.sum().backward()
    assert np.allclose(x.grad.numpy(), 1.0)
    z = x * 1
    z //= 2
    with pytest.raises(RuntimeError, match="no derivative"):
        z.sum().backward()
    with minae.no_grad():
        x //= 2
    assert x.tolist() == [2.0, -2.0]


# ---------------------------------------------------------- broadcast_shapes, as_tensor, detach_ ---
def test_broadcast_shapes():
    assert minae.broadcast_shapes((2, 1), (3,)) == (2, 3)
    assert minae.broadcast_shapes() == () and minae.broadcast_shapes(3, (2, 1)) == (2, 3)
    with pytest.raises(ValueError, match=r"\(2,\), \(3,\)"):
        minae.broadcast_shapes((2,), (3,))
    if _has_torch():
        import torch

        assert tuple(torch.broadcast_shapes((4, 1, 3), (5, 1), 1)) == minae.broadcast_shapes((4, 1, 3), (5, 1), 1)


def test_as_tensor_shares_what_it_can():
    n = np.array([1.0, 2.0])
    t = minae.as_tensor(n)
    n[0] = 9
    assert t.tolist() == [9.0, 2.0] and t.dtype == minae.float64
    assert minae.as_tensor(t) is t
    assert minae.as_tensor(t, dtype=minae.float32).dtype == minae.float32
    assert minae.as_tensor([1.0, 2.0]).dtype == minae.float32 and minae.as_tensor([1, 2]).dtype == minae.int64
    copied = minae.as_tensor(n, dtype=minae.float32)
    n[1] = 5
    assert copied.tolist() == [9.0, 2.0]


def test_detach_in_place():
    a = minae.tensor([1.0, 2.0], requires_grad=True)
    b = a * 2
    b.detach_()
    assert not b.requires_grad and b.is_leaf
    with pytest.raises(RuntimeError, match="detach"):
        (a * 2)[0:1].detach_()
    assert a.detach_() is a and not a.requires_grad

"""The parts of PyTorch's tensor API a student expects that minae lacked: ``//`` and ``%`` (and their in-place
forms), ``broadcast_shapes``, ``as_tensor``, ``detach_`` (tensor hooks: test_autograd.py).

Each test asserts the value (or the error) without PyTorch, and compares with PyTorch where it is installed.
"""

import numpy as np
import pytest
from torch_oracle import HAS_TORCH, torch_or_skip

import minae

# ---------------------------------------------------------------- // and % ---
PAIRS = [([5.5, -3.2, 7.0, -7.0], 2.0), ([5.5, -3.2, 7.0, -7.0], -2.0), ([7, -7, 3], 2), ([7, -7, 3], -2)]


@pytest.mark.parametrize("a, b", PAIRS)
def test_floor_divide_and_remainder_round_toward_minus_infinity(a, b):
    ta = minae.tensor(a)
    for got, want in [(ta // b, np.floor_divide(a, b)), (ta % b, np.remainder(a, b)), (b % ta, np.remainder(b, a))]:
        assert np.allclose(got.numpy(), want)
    assert np.allclose(minae.floor_divide(ta, b).numpy(), np.floor_divide(a, b))
    assert np.allclose(minae.remainder(ta, b).numpy(), np.remainder(a, b))
    if HAS_TORCH:
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


# ------------------------------------ broadcast_shapes, as_tensor, detach_ ---
def test_broadcast_shapes():
    assert minae.broadcast_shapes((2, 1), (3,)) == (2, 3)
    assert minae.broadcast_shapes() == () and minae.broadcast_shapes(3, (2, 1)) == (2, 3)
    with pytest.raises(ValueError, match=r"\(2,\), \(3,\)"):
        minae.broadcast_shapes((2,), (3,))
    if HAS_TORCH:
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


# detach_() on a tensor a function already took cut the gradient silently: y = x·2, z = y·y, y.detach_(): x.grad
# stayed None. The functions recorded before keep their edge (PyTorch's graph stores it in them): one that only
# passes the gradient on (y + 1) sends it down the old path; one that saved y for its backward (y·y) raises.
def _detached_after_use(lib, use):
    x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
    y = x * 2
    z = use(y)
    y.detach_()
    assert not y.requires_grad and y.is_leaf
    z.sum().backward()
    return x.grad.detach().numpy()


def test_detach_in_place_after_a_use_that_saved_nothing_keeps_the_gradient():
    np.testing.assert_allclose(_detached_after_use(minae, lambda y: y + 1), [2.0, 2.0])
    if HAS_TORCH:
        np.testing.assert_allclose(_detached_after_use(torch_or_skip(), lambda y: y + 1), [2.0, 2.0])


def test_detach_in_place_after_a_use_that_saved_it_raises():
    with pytest.raises(RuntimeError, match=r"detach_\(\)"):
        _detached_after_use(minae, lambda y: y * y)
    if HAS_TORCH:
        with pytest.raises(RuntimeError, match="detach"):
            _detached_after_use(torch_or_skip(), lambda y: y * y)


# ------------------------------------------------------------------ creation ---
# full((2,), 3) was float32 and full((2,), True) float32 (PyTorch: int64 and bool, from the fill value's kind).
def test_full_takes_its_dtype_from_the_fill_value():
    assert minae.full((2,), 3).dtype == minae.int64 and minae.full((2,), True).dtype == minae.bool_
    assert (
        minae.full((2,), 2.5).dtype == minae.float32 and minae.full((2,), 3, dtype=minae.float64).dtype == minae.float64
    )
    assert minae.full((2,), 3).tolist() == [3, 3]
    if HAS_TORCH:
        import torch

        for v in (3, True, 2.5, np.float64(0.5), np.int64(2)):
            assert str(minae.full((2,), v).dtype) == str(torch.full((2,), v).dtype).removeprefix("torch."), v

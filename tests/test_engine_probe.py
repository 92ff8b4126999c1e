"""Cases an independent probe of the engine found, written as a student writes PyTorch-style code.

Grouped by topic. Each asserts the right value (or the error) without PyTorch, so that CI without it still
checks it, and compares with PyTorch where it is installed.
"""

import math

import numpy as np
import pytest
from torch_oracle import HAS_TORCH, torch_or_skip

import minae
import minae.nn.functional as F

# ------------------------------------------------------------------ dims ---
# A dim out of range was taken modulo ndim inside a tuple: x.sum((2,)) of a matrix summed dim 0.
BAD_DIMS = [
    ("sum", lambda m, x: x.sum((2,))),
    ("mean", lambda m, x: x.mean((-3,))),
    ("var", lambda m, x: x.var((5,))),
    ("logsumexp", lambda m, x: m.logsumexp(x, (2,))),
    ("sum, one good one bad", lambda m, x: x.sum((0, 2))),
    ("flatten start", lambda m, x: x.flatten(5)),
    ("flatten end", lambda m, x: x.flatten(0, -3)),
]


@pytest.mark.parametrize("name, op", BAD_DIMS, ids=[c[0] for c in BAD_DIMS])
def test_a_dim_out_of_range_raises_naming_it(name, op):
    x = minae.arange(6.0).reshape(2, 3)
    with pytest.raises(IndexError, match="out of range"):
        op(minae, x)


@pytest.mark.parametrize("name, op", BAD_DIMS, ids=[c[0] for c in BAD_DIMS])
def test_a_dim_out_of_range_raises_in_torch_too(name, op):
    torch = torch_or_skip()
    with pytest.raises(IndexError):
        op(torch, torch.arange(6.0).reshape(2, 3))


def test_a_repeated_dim_is_named():
    x = minae.arange(6.0).reshape(2, 3)
    with pytest.raises(ValueError, match="more than once"):
        x.sum((1, -1))


def test_flatten_start_after_end_raises():
    with pytest.raises(ValueError, match="start_dim 2 comes after end_dim 1"):
        minae.zeros(2, 3, 4).flatten(2, 1)


def test_dims_of_a_0d_tensor_as_torch():
    x = minae.tensor(3.0, requires_grad=True)
    y = x.sum((0,)) * x.mean((-1,))
    y.backward()
    assert y.item() == 9.0 and x.grad.item() == 6.0
    assert x.flatten().shape == (1,) and x.flatten(0, -1).shape == (1,)
    with pytest.raises(IndexError):
        x.sum((1,))
    torch = torch_or_skip()
    xt = torch.tensor(3.0, requires_grad=True)
    (xt.sum((0,)) * xt.mean((-1,))).backward()
    assert xt.grad.item() == x.grad.item()


def test_expand_refuses_minus_one_at_a_new_leading_dim_and_too_few_sizes():
    x = minae.zeros(2, 3)
    with pytest.raises(ValueError, match="new leading dimension"):
        x.expand(-1, 2, 3)  # was (3, 2, 3): the -1 took the last dim's size
    with pytest.raises(ValueError, match="at least one per dimension"):
        x.expand(3)
    assert x.expand(4, -1, 3).shape == (4, 2, 3)


def test_squeeze_takes_a_tuple_of_dims():
    x = minae.zeros(1, 2, 1, 1, requires_grad=True)
    y = x.squeeze((0, 1, -1))  # dim 1 has size 2: kept, as in PyTorch
    assert y.shape == (2, 1)
    y.sum().backward()
    assert x.grad.shape == (1, 2, 1, 1)
    torch = torch_or_skip()
    assert tuple(torch.zeros(1, 2, 1, 1).squeeze((0, 1, -1)).shape) == y.shape


# ------------------------------------------------------------- 0-d tensors ---
# In a backward the gradient of a 0-d tensor is a NumPy scalar (NumPy's ufuncs return scalars for 0-d arrays):
# SetItem's backward wrote into it ("'numpy.float32' object does not support item assignment").
ZERO_D_WRITES = [
    ("y[()] = v", lambda y, v: y.__setitem__((), v)),
    ("y[...] = v", lambda y, v: y.__setitem__(Ellipsis, v)),
    ("y.copy_(v)", lambda y, v: y.copy_(v)),
]


@pytest.mark.parametrize("name, write", ZERO_D_WRITES, ids=[c[0] for c in ZERO_D_WRITES])
def test_a_write_into_a_0d_tensor_then_a_product_backward(name, write):
    x = minae.tensor(2.0, requires_grad=True)
    v = minae.tensor(5.0, requires_grad=True)
    y = x * 1
    write(y, v)
    (y * x).backward()  # y = v: ∂/∂x (v x) = v = 5, ∂/∂v = x = 2
    assert (y.item(), x.grad.item(), v.grad.item()) == (5.0, 5.0, 2.0)


def test_fill_of_a_0d_non_leaf_then_a_product_backward():
    x = minae.tensor(2.0, requires_grad=True)
    y = x * 3
    y.fill_(4.0)
    (y * x).backward()
    assert (y.item(), x.grad.item()) == (4.0, 4.0)
    torch = torch_or_skip()
    xt = torch.tensor(2.0, requires_grad=True)
    yt = xt * 3
    yt.fill_(4.0)
    (yt * xt).backward()
    assert xt.grad.item() == x.grad.item()


# --------------------------------------------------------- numerics: BCE ---
# binary_cross_entropy took log(1 − ỹ) as log(fl(1 − ỹ)), 0 once 1 − ỹ rounds to 1 (the loss of a small ỹ
# against t = 0 was 0, not ỹ), and combined the logs as log q + t (log p − log q), which cancels where t = 1
# and ỹ ≈ 1 (ỹ = 1 − 10⁻⁷ gave 0, not 10⁻⁷).
BCE_PROBS = [1e-30, 1e-12, 1e-8, 1e-4, 0.3, 0.5, 0.7, 1 - 1e-4, 1 - 1e-7, 1 - 1e-12]


def _bce_reference(p, t):
    """−[t log p + (1 − t) log(1 − p)] in float64 with log1p, from p's stored value."""
    return -(t * math.log(p) + (1 - t) * math.log1p(-p))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("t", [0.0, 1.0, 0.25])
def test_bce_of_probabilities_is_exact_to_a_few_ulp_in_both_tails(dtype, t):
    dt = getattr(minae, dtype)
    p = minae.tensor(BCE_PROBS, dtype=dt)
    p = p[(p > 0) & (p < 1)]  # 1 − 10⁻¹² is 1 in float32
    loss = F.binary_cross_entropy(p, minae.full(p.shape, t, dtype=dt), reduction="none")
    ref = np.array([_bce_reference(float(v), t) for v in p.numpy()])
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(loss.numpy(), ref, rtol=4 * eps, atol=0)


def test_bce_of_probabilities_against_torch():
    torch = torch_or_skip()
    for dtype in ("float32", "float64"):
        p = np.array(BCE_PROBS, dtype=dtype)
        p = p[(p > 0) & (p < 1)]
        for t in (0.0, 1.0, 0.25):
            ours = F.binary_cross_entropy(
                minae.tensor(p), minae.full(p.shape, t, dtype=getattr(minae, dtype)), None, "none"
            )
            theirs = torch.nn.functional.binary_cross_entropy(
                torch.tensor(p), torch.full(p.shape, t, dtype=getattr(torch, dtype)), reduction="none"
            )
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=8 * np.finfo(dtype).eps, atol=0)


def test_bce_of_a_sigmoid_in_the_negative_tail_against_zero_target():
    # −log(1 − σ(x)) = softplus(x) ≈ e^x for x ≪ 0: was 0 (float32, x = −20) and 1.7e-4 off (float64, x = −30)
    for dtype, x in (("float32", -20.0), ("float64", -30.0)):
        xt = minae.tensor([x], dtype=getattr(minae, dtype), requires_grad=True)
        loss = F.binary_cross_entropy(xt.sigmoid(), minae.zeros(1, dtype=getattr(minae, dtype)))
        assert loss.item() == pytest.approx(math.log1p(math.exp(x)), rel=4 * np.finfo(dtype).eps)
        loss.backward()
        assert xt.grad.item() == pytest.approx(1 / (1 + math.exp(-x)), rel=8 * np.finfo(dtype).eps)  # σ(x)


def test_bce_of_0d_probabilities():
    # its forward wrote with out= into NumPy scalars ("return arrays must be of ArrayType")
    p = minae.tensor(0.3, requires_grad=True)
    loss = F.binary_cross_entropy(p, minae.tensor(1.0))
    loss.backward()
    assert loss.item() == pytest.approx(-math.log(0.3), rel=1e-6)
    assert p.grad.item() == pytest.approx(-1 / 0.3, rel=1e-6)


# ------------------------------------------------- indices kept for the backward ---
# GetItem and SetItem kept the caller's index array itself: a write into it between the forward and the
# backward sent the gradient to other elements (PyTorch raises for a tensor index; for a NumPy one it too is
# silently wrong). The key now holds its own copy: the gradient is the forward's.
INDEX_KINDS = [
    ("tensor", lambda: minae.tensor([0, 1]), lambda i: i.__setitem__(0, 2)),
    ("numpy", lambda: np.array([0, 1]), lambda i: i.__setitem__(0, 2)),
    ("bool mask", lambda: minae.tensor([True, True, False]), lambda i: i.__setitem__(1, False)),
]


@pytest.mark.parametrize("kind, make, write", INDEX_KINDS, ids=[c[0] for c in INDEX_KINDS])
def test_a_getitem_index_written_after_the_forward_does_not_move_the_gradient(kind, make, write):
    x = minae.tensor([0.2, 2.0, 3.0], requires_grad=True)
    i = make()
    y = (x[i] * minae.tensor([1.0, 10.0])).sum()
    write(i)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 10.0, 0.0])


def test_a_setitem_index_written_after_the_forward_does_not_move_the_gradient():
    x = minae.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = minae.tensor([5.0, 6.0], requires_grad=True)
    i = minae.tensor([0, 1])
    y = x * 1
    y[i] = v
    i[0] = 2
    (y * minae.tensor([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_array_equal(y.numpy(), [5.0, 6.0, 3.0])
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 3.0])
    np.testing.assert_array_equal(v.grad.numpy(), [1.0, 2.0])


def test_a_tuple_of_index_tensors_written_after_the_forward():
    x = minae.arange(6.0).reshape(2, 3).requires_grad_()
    i, j = minae.tensor([0, 1]), minae.tensor([2, 0])
    y = x[i, j].sum()
    j[0] = 1
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0, 1], [1, 0, 0]])
    torch = torch_or_skip()  # the gradient of the forward that ran, as PyTorch's when nothing is written
    xt = torch.arange(6.0).reshape(2, 3).requires_grad_()
    xt[torch.tensor([0, 1]), torch.tensor([2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())


# ------------------------------------------------- raw arrays kept for the backward ---
# A raw NumPy array beside a tensor is a constant; the graph kept the caller's array itself, so a write into it
# before the backward changed the gradient silently. (PyTorch takes no NumPy operand here.)
RAW_CONSTANTS = [
    ("x * c", lambda x, c: (x * c).sum(), lambda: np.array([1.0, 2.0], dtype="float32"), [1.0, 2.0]),
    ("c / x", lambda x, c: (c / x).sum(), lambda: np.array([1.0, 2.0], dtype="float32"), [-4.0, -0.5]),
    ("where(c, x, 2x)", lambda x, c: minae.where(c, x, x * 2).sum(), lambda: np.array([True, False]), [1.0, 2.0]),
]


@pytest.mark.parametrize("name, f, make, grad", RAW_CONSTANTS, ids=[c[0] for c in RAW_CONSTANTS])
def test_a_raw_array_written_after_the_forward_does_not_change_the_gradient(name, f, make, grad):
    x = minae.tensor([0.5, 2.0], requires_grad=True)
    c = make()
    y = f(x, c)
    c[0] = c[1]  # 100 would do; this keeps the bool case a bool
    c[1] = 0
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), grad)


# ------------------------------------------------------------------ view ---
# view was reshape: on a transposed tensor it silently copied, so writes through the "view" did not reach the
# base (W.T.view(-1)[0] = 100 left W unchanged). PyTorch raises there; so does view now.
def test_view_of_a_transpose_raises_and_reshape_copies():
    w = minae.arange(6.0).reshape(2, 3)
    with pytest.raises(RuntimeError, match=r"view\(-1,\).*use \.reshape"):
        w.T.view(-1)
    with pytest.raises(RuntimeError, match="without a copy"):
        minae.view(w.T, 6)
    r = w.T.reshape(-1)
    r[0] = 100.0
    assert w[0, 0].item() == 0.0
    torch = torch_or_skip()
    with pytest.raises(RuntimeError):
        torch.arange(6.0).reshape(2, 3).T.view(-1)


def test_a_view_shares_memory_and_writes_through_it_reach_the_base():
    x = minae.arange(6.0).requires_grad_()
    y = x * 1
    v = y.view(2, 3)
    v[1] = v[0] + 10  # y[3:] = y[:3] + 10
    (y * y).sum().backward()  # ∂/∂x_i = 2 y_i + 2 y_{i+3} for i < 3, 0 for the elements written over
    np.testing.assert_allclose(y.numpy(), [0, 1, 2, 10, 11, 12])
    np.testing.assert_allclose(x.grad.numpy(), [20, 24, 28, 0, 0, 0])
    assert minae.zeros(0, 3).view(3, 0).shape == (3, 0)  # nothing to share: still a view


def test_reshape_refuses_a_negative_size_other_than_minus_one():
    # NumPy reads any negative size as -1: reshape(-2, 2) silently was reshape(-1, 2)
    x = minae.zeros(4)
    with pytest.raises(ValueError, match="invalid size -2"):
        x.reshape(-2, 2)
    with pytest.raises(ValueError, match="invalid size -3"):
        x.view(2, -3)
    assert x.reshape(-1, 2).shape == (2, 2)


# ----------------------------------------------------------- bad input ---
@pytest.mark.parametrize(
    "data", [["a"], np.array(["a", "b"]), np.array([1, "x"], dtype=object), np.array(["2026-01-01"], dtype="M8[D]")]
)
def test_a_tensor_of_non_numbers_is_refused_naming_the_dtype(data):
    # minae.tensor(["a"]) made a tensor of dtype <U1, which failed later in some op with NumPy's message
    with pytest.raises(TypeError, match="numbers or booleans, got an array of dtype"):
        minae.tensor(data)
    if isinstance(data, np.ndarray):
        with pytest.raises(TypeError, match="numbers or booleans"):
            minae.from_numpy(data)


def test_backward_into_a_grad_assigned_a_non_tensor_names_it():
    # w.grad = an ndarray, then backward: "'memoryview' object has no attribute 'flags'" (PyTorch refuses the
    # assignment itself, and so does minae now)
    w = minae.zeros(2, requires_grad=True)
    with pytest.raises(TypeError, match=r"\.grad must be a Tensor or None, not a ndarray"):
        w.grad = np.ones(2, dtype="float32")


# ------------------------------------------------------- empty reductions ---
def test_logsumexp_over_an_empty_dim_is_minus_inf():
    # was NumPy's "zero-size array to reduction operation maximum which has no identity"
    x = minae.zeros(0, 3, requires_grad=True)
    y = minae.logsumexp(x, 0)
    assert y.shape == (3,) and np.all(y.numpy() == -np.inf)
    y.sum().backward()
    assert x.grad.shape == (0, 3)
    assert minae.logsumexp(minae.zeros(2, 0), 1, keepdim=True).shape == (2, 1)
    torch = torch_or_skip()
    np.testing.assert_array_equal(torch.logsumexp(torch.zeros(0, 3), 0).numpy(), y.numpy())


def test_max_along_a_non_empty_dim_of_an_empty_tensor_is_empty():
    x = minae.zeros(0, 2, requires_grad=True)
    values, indices = x.max(1)
    assert values.shape == (0,) and indices.shape == (0,)
    values.sum().backward()
    assert x.grad.shape == (0, 2)
    with pytest.raises(ValueError, match="along dim 0 of size 0"):
        x.min(0)


# ------------------------------------------------------------ freed graphs ---
# grad()'s pruning skipped a function freed by an earlier backward, so the inputs below it got no gradient:
# "input 0 was not used to compute the outputs", and with allow_unused=True a silent None.
def _shared_subgraph_freed():
    x = minae.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    y, z = h.sum(), (h * 2).sum()
    y.backward()  # frees Exp, which z's graph shares
    return x, z


@pytest.mark.parametrize("allow_unused", [False, True])
def test_grad_through_a_freed_shared_subgraph_names_the_freed_graph(allow_unused):
    x, z = _shared_subgraph_freed()
    with pytest.raises(RuntimeError, match="Exp a second time.*retain_graph=True"):
        minae.grad(z, x, allow_unused=allow_unused)


def test_grad_through_a_freed_shared_subgraph_raises_in_torch_too():
    torch = torch_or_skip()
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    y, z = h.sum(), (h * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        torch.autograd.grad(z, x, allow_unused=True)


def test_grad_with_a_retained_shared_subgraph_still_works():
    x = minae.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    y, z = h.sum(), (h * 2).sum()
    y.backward(retain_graph=True)
    (g,) = minae.grad(z, x)
    np.testing.assert_allclose(g.numpy(), 2 * np.exp([1.0, 2.0]), rtol=1e-6)


# ------------------------------------------------- probe leftovers: numerics ---
# float32 σ(x) is subnormal for x in [−100, −87.3]: ∂ℓ/∂ỹ ≈ −1/ỹ overflowed, and BCE(σ(x), 1)'s gradient was −inf.
@pytest.mark.parametrize("target", [0.0, 1.0, 0.5])
def test_bce_of_a_float32_sigmoid_has_a_finite_gradient_in_the_subnormal_tail(target):
    xs = [-100.0, -95.0, -90.0, -88.8, -88.5, -87.0, -20.0]
    x = minae.tensor(xs, requires_grad=True)
    F.binary_cross_entropy(x.sigmoid(), minae.full((len(xs),), target), reduction="sum").backward()
    g = x.grad.numpy()
    assert np.all(np.isfinite(g)) and np.all(np.abs(g) <= 1.0 + 1e-6)
    # the sign of σ(x) − y (σ(x) ≈ 0 here), or ~0 where the log is clamped at −100 (x = −100)
    assert np.all(g >= -1e-30) if target == 0.0 else np.all(g <= 1e-30)
    if target == 1.0:
        assert g[-1] == pytest.approx(-1.0, rel=1e-6)  # σ(−20) − 1 where ỹ is a normal number
    torch = pytest.importorskip("torch")
    tx = torch.tensor(xs, requires_grad=True)
    torch.nn.functional.binary_cross_entropy(tx.sigmoid(), torch.full((len(xs),), target), reduction="sum").backward()
    assert np.all(np.isfinite(tx.grad.numpy()))  # PyTorch is finite there too


# ----------------------------------------------- probe leftovers: type promotion ---
# An int tensor times a Python float gave float64 (PyTorch: the default float dtype); a float64 0-d tensor raised
# a float32 tensor to float64 (PyTorch: float32); int / int gave float64 (PyTorch: float32).
def _promotion_operands(lib):
    return {
        "int64": lib.tensor([1, 2]),
        "int32": lib.tensor([1, 2], dtype=lib.int32),
        "bool": lib.tensor([True, False]),
        "float32": lib.tensor([1.0, 2.0]),
        "float64": lib.tensor([1.0, 2.0], dtype=lib.float64),
        "float64 0-d": lib.tensor(2.0, dtype=lib.float64),
        "int64 0-d": lib.tensor(3),
        "2.5": 2.5,
        "3": 3,
    }


PROMOTION_OPS = {"+": lambda a, b: a + b, "*": lambda a, b: a * b, "/": lambda a, b: a / b, "%": lambda a, b: a % b}


def test_type_promotion_follows_pytorchs_categories():
    t = minae.tensor([1, 2])
    assert (t * 2.5).dtype == minae.float32 and (2.5 * t).dtype == minae.float32
    assert (t / 2).dtype == minae.float32 and (t / t).dtype == minae.float32
    assert (minae.tensor([True]) * 2.5).dtype == minae.float32
    assert (minae.tensor([1.0]) + minae.tensor(2.0, dtype=minae.float64)).dtype == minae.float32
    assert (t + minae.tensor(2.0, dtype=minae.float64)).dtype == minae.float64  # a higher kind: the 0-d's dtype
    assert (t * 3).dtype == minae.int64 and (minae.tensor([1], dtype=minae.int32) * 3).dtype == minae.int32
    with minae.no_grad():
        assert (minae.tensor([1.0, 2.0], dtype=minae.float64) * 2.5).dtype == minae.float64


def test_type_promotion_matches_torch_on_every_pair():
    torch = torch_or_skip()
    ours, theirs = _promotion_operands(minae), _promotion_operands(torch)
    checked = 0
    for name_a in ours:
        for name_b in ours:
            a, b = ours[name_a], ours[name_b]
            if not isinstance(a, minae.Tensor) and not isinstance(b, minae.Tensor):
                continue
            for sym, op in PROMOTION_OPS.items():
                try:
                    want = str(op(theirs[name_a], theirs[name_b]).dtype).removeprefix("torch.")
                except RuntimeError:
                    continue  # (PyTorch refuses some bool arithmetic that NumPy allows)
                assert str(op(a, b).dtype) == want, f"{name_a} {sym} {name_b}"
                checked += 1
    assert checked > 200


# Every op that combines operands of two dtypes takes PyTorch's result dtype, not only binary arithmetic:
# maximum/minimum/where/cat of int64 and float32 and clamp of an int64 tensor to a float bound gave NumPy's float64,
# a float64 0-d tensor raised where's float32 branch to float64; mean and logsumexp of int64 gave float64.
def _combining_ops(lib):
    def cond(a, b):
        return lib.tensor([True, False])

    def tensor_of(x):
        return x if isinstance(x, lib.Tensor) else lib.tensor(x)

    return {
        "maximum": lambda a, b: lib.maximum(a, b),
        "minimum": lambda a, b: lib.minimum(a, b),
        "where": lambda a, b: lib.where(cond(a, b), a, b),
        "cat": lambda a, b: lib.cat([tensor_of(a).reshape(-1), tensor_of(b).reshape(-1)]),
        "clamp": lambda a, b: lib.clamp(a, min=b) if isinstance(a, lib.Tensor) else lib.clamp(tensor_of(b), max=a),
    }


def test_every_combining_op_takes_pytorchs_result_dtype():
    i, f = minae.tensor([1, 5]), minae.tensor([2.0, 3.0])
    for y in (minae.maximum(i, f), minae.minimum(f, i), minae.where(i > 2, i, f), minae.cat([i, f])):
        assert y.dtype == minae.float32
    assert minae.where(i > 2, f, minae.tensor(0.0, dtype=minae.float64)).dtype == minae.float32
    assert minae.clamp(i, min=2.5).dtype == minae.float32 and minae.clamp(i, min=2).dtype == minae.int64
    assert i.mean().dtype == minae.float32 and minae.logsumexp(i, 0).dtype == minae.float32


def test_every_combining_op_matches_torch_on_every_pair(leaf64):
    torch = torch_or_skip()
    ours, theirs = _promotion_operands(minae), _promotion_operands(torch)
    ops, torch_ops = _combining_ops(minae), _combining_ops(torch)
    checked = 0
    for name_a in ours:
        for name_b in ours:
            for op in ops:
                try:
                    want = torch_ops[op](theirs[name_a], theirs[name_b])
                except (RuntimeError, TypeError):
                    continue  # (PyTorch takes no Python number for maximum, no bool clamp, …)
                got = ops[op](ours[name_a], ours[name_b])
                assert str(got.dtype) == str(want.dtype).removeprefix("torch."), f"{op}({name_a}, {name_b})"
                np.testing.assert_allclose(got.numpy(), want.numpy())
                checked += 1
    assert checked > 200
    # and the gradients keep each leaf's dtype (a float64 0-d bound of a float32 result gets a float64 gradient)
    a, b = minae.tensor([1.0, 2.0, 3.0], requires_grad=True), leaf64(2.0)
    ta, tb = torch.tensor(a.numpy(), requires_grad=True), torch.tensor(b.numpy(), requires_grad=True)
    for lib, x, y in ((minae, a, b), (torch, ta, tb)):
        (lib.maximum(x, y) * 2 + lib.where(x > 1.5, x, y) + lib.clamp(x, min=y)).sum().backward()
    assert a.grad.dtype == minae.float32 and b.grad.dtype == minae.float64
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy())
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy())


# Float-only functions of an integer tensor give the default float, as exp or sigmoid do: leaky_relu of int64 gave
# NumPy's float64 (an integer times the float slope).
def test_a_float_only_function_of_an_integer_tensor_gives_the_default_float():
    i = minae.tensor([-2, 0, 3])
    for y in (minae.leaky_relu(i, 0.1), minae.nn.functional.leaky_relu(i), minae.softplus(i), minae.sigmoid(i)):
        assert y.dtype == minae.float32
    np.testing.assert_allclose(minae.leaky_relu(i, 0.1).numpy(), [-0.2, 0.0, 3.0], rtol=1e-6)


# A sum of an integer or bool tensor is int64 in PyTorch: uint8 (a mask or an image) summed to NumPy's uint64.
def test_an_integer_sum_is_int64():
    for dt in (minae.uint8, minae.int32, minae.int64, minae.bool_):
        x = minae.tensor([[1, 0], [1, 1]]).to(dt)
        assert x.sum().dtype == minae.int64 and minae.sum(x, 0).dtype == minae.int64, dt
    assert minae.tensor([200, 100], dtype=minae.uint8).sum().item() == 300


# binary_cross_entropy_with_logits of float32 logits against float64 targets was float32 (PyTorch: float64, as
# for any arithmetic of the two; its gradients keep each leaf's dtype).
def test_bce_with_logits_promotes_as_arithmetic_does(leaf64):
    x = minae.tensor([-3.0, 0.5, 40.0], requires_grad=True)
    t = leaf64([0.25, 1.0, 0.5])
    loss = minae.nn.functional.binary_cross_entropy_with_logits(x, t, reduction="sum")
    assert loss.dtype == minae.float64
    loss.backward()
    assert x.grad.dtype == minae.float32 and t.grad.dtype == minae.float64
    if HAS_TORCH:
        import torch

        tx, tt = torch.tensor(x.numpy(), requires_grad=True), torch.tensor(t.numpy(), requires_grad=True)
        want = torch.nn.functional.binary_cross_entropy_with_logits(tx, tt, reduction="sum")
        assert str(want.dtype) == "torch.float64"
        want.backward()
        np.testing.assert_allclose(loss.item(), want.item(), rtol=1e-7)
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)
        np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-6)


# ------------------------------------------------- probe leftovers: dtype mismatches ---
# nn.Linear with float32 weights silently took float64 input and gave float64 (PyTorch raises).
def test_a_layer_or_matrix_product_of_two_dtypes_raises_naming_both():
    layer = minae.nn.Linear(3, 2)
    with pytest.raises(TypeError, match="float64 and float32"):
        layer(minae.ones(4, 3, dtype=minae.float64))
    with pytest.raises(TypeError, match="float64 and float32"):
        layer(minae.ones(5, 4, 3, dtype=minae.float64))  # N-D input, through the reshape
    with pytest.raises(TypeError, match="float32 and float64"):
        minae.ones(2, 3) @ minae.ones(3, 2, dtype=minae.float64)
    assert layer.double()(minae.ones(4, 3, dtype=minae.float64)).dtype == minae.float64


def test_binary_cross_entropy_refuses_a_target_of_another_dtype():
    p = minae.full((3,), 0.5)
    for target in (minae.ones(3, dtype=minae.float64), minae.ones(3, dtype=minae.int64)):
        with pytest.raises(TypeError, match=f"target .*dtype {target.dtype}"):
            F.binary_cross_entropy(p, target)

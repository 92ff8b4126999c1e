"""Every differentiable op: forward values against NumPy, first-order gradcheck
(hypothesis draws shapes, broadcast shapes included) and second-order
gradgradcheck, all in float64, on every device."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minae
from minae import backend

# the conftest profile, plus: the `device` and seeding fixtures are function-scoped on purpose
hyp = settings(
    settings.get_profile("minae"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
seeds = st.integers(0, 2**32 - 1)


# ------------------------------------------------------------------ helpers ---
def values(rng, shape, kind="any"):
    """Random float64 values of ``shape`` in a domain where the op is smooth.

    any: U(-2, 2); pos: U(0.5, 2) (log, sqrt, powers); gap: ±0.5 or ±1.5 plus
    U(-0.3, 0.3), so every value is at least 0.2 away from the kinks at -1, 0 and 1
    (abs, relu, clamp) and finite differences never straddle one; int and half:
    values at least 0.1 apart from each other (maximum/minimum without ties).
    """
    if kind == "any":
        a = rng.uniform(-2, 2, shape)
    elif kind == "pos":
        a = rng.uniform(0.5, 2, shape)
    elif kind == "gap":
        a = rng.choice([-1.5, -0.5, 0.5, 1.5], shape) + rng.uniform(-0.3, 0.3, shape)
    elif kind in ("int", "half"):  # integers or half-integers ± 0.2: an int and a half never tie
        a = rng.integers(-2, 3, shape) + (0.5 if kind == "half" else 0.0) + rng.uniform(-0.2, 0.2, shape)
    else:
        raise ValueError(kind)
    return np.asarray(a, dtype=np.float64)


def raw(a, device):
    """A raw array (NumPy or CuPy) on ``device``: the constants an op may meet."""
    return minae.tensor(a, dtype=minae.float64, device=device).data


def check_forward(y, expected, rtol=1e-10, atol=1e-12):
    assert isinstance(y, minae.Tensor)
    expected = np.asarray(expected)
    assert tuple(y.shape) == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=rtol, atol=atol)


def sigmoid_ref(a):
    return 1 / (1 + np.exp(-a))


# ------------------------------------------------------------- elementwise ---
# name: (minae function, NumPy reference, input domain)
UNARY = {
    "neg": (lambda t: -t, np.negative, "any"),
    "exp": (minae.exp, np.exp, "any"),
    "log": (minae.log, np.log, "pos"),
    "sqrt": (minae.sqrt, np.sqrt, "pos"),
    "abs": (minae.abs, np.abs, "gap"),
    "tanh": (minae.tanh, np.tanh, "any"),
    "sigmoid": (minae.sigmoid, sigmoid_ref, "any"),
    "relu": (minae.relu, lambda a: np.maximum(a, 0), "gap"),
    "leaky_relu": (lambda t: minae.leaky_relu(t, 0.1), lambda a: np.where(a > 0, a, 0.1 * a), "gap"),
    "leaky_relu_default": (minae.leaky_relu, lambda a: np.where(a > 0, a, 0.01 * a), "gap"),
    "softplus": (minae.softplus, lambda a: np.log1p(np.exp(a)), "any"),
    "sin": (minae.sin, np.sin, "any"),
    "cos": (minae.cos, np.cos, "any"),
    "clamp_min": (lambda t: minae.clamp(t, min=0.0), lambda a: np.maximum(a, 0.0), "gap"),
    "clamp_max": (lambda t: minae.clamp(t, max=1.0), lambda a: np.minimum(a, 1.0), "gap"),
    "clamp_both": (lambda t: minae.clamp(t, -1.0, 1.0), lambda a: np.clip(a, -1.0, 1.0), "gap"),
    "clip_method": (lambda t: t.clip(-1.0, 0.0), lambda a: np.clip(a, -1.0, 0.0), "gap"),
    "square": (lambda t: t**2, np.square, "any"),
    "cube_int": (lambda t: t**3, lambda a: a**3, "any"),
    "pow_half": (lambda t: t**0.5, np.sqrt, "pos"),
    "pow_neg": (lambda t: t**-1.5, lambda a: a**-1.5, "pos"),
    "rpow": (lambda t: 2.0**t, lambda a: 2.0**a, "any"),
    "self_mul": (lambda t: t * t, np.square, "any"),
    "self_div": (lambda t: (t + 3.0) / t, lambda a: (a + 3.0) / a, "gap"),
    "pow_self": (lambda t: t**t, lambda a: a**a, "pos"),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@hyp
@given(shape=shapes, seed=seeds)
def test_unary_forward_and_gradcheck(leaf64, name, device, shape, seed):
    fn, ref, kind = UNARY[name]
    a = values(np.random.default_rng(seed), shape, kind)
    x = leaf64(a, device)
    check_forward(fn(x), ref(a))
    assert minae.gradcheck(fn, [x])


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradgradcheck(leaf64, name, device):
    fn, _, kind = UNARY[name]
    x = leaf64(values(np.random.default_rng(1), (2, 3), kind), device)
    assert minae.gradgradcheck(fn, [x])


def test_method_forms_match_functions(leaf64, device):
    x = leaf64(values(np.random.default_rng(2), (3, 2), "pos"), device)
    for method, fn in [
        (x.exp, minae.exp),
        (x.log, minae.log),
        (x.sqrt, minae.sqrt),
        (x.abs, minae.abs),
        (x.sin, minae.sin),
        (x.cos, minae.cos),
        (x.tanh, minae.tanh),
        (x.sigmoid, minae.sigmoid),
        (x.relu, minae.relu),
        (x.softplus, minae.softplus),
    ]:
        np.testing.assert_array_equal(method().numpy(), fn(x).numpy())
    np.testing.assert_array_equal(abs(-x).numpy(), x.numpy())
    np.testing.assert_array_equal(x.pow(2).numpy(), (x * x).numpy())
    assert (+x) is x


def test_extreme_values_stay_finite(leaf64, device):
    a = np.array([-800.0, -30.0, 0.0, 30.0, 800.0])
    x = leaf64(a, device)
    for fn, ref in [(minae.sigmoid, sigmoid_ref), (minae.softplus, lambda v: np.logaddexp(0, v))]:
        y = fn(x)
        assert np.all(np.isfinite(y.numpy())), fn
        with np.errstate(over="ignore"):
            check_forward(y, ref(a))
        (g,) = minae.grad(y.sum(), x)
        assert np.all(np.isfinite(g.numpy()))


# ----------------------------------------------------------- binary ops ---
# name: (minae function, NumPy reference, domain of a, domain of b)
BINARY = {
    "add": (lambda a, b: a + b, np.add, "any", "any"),
    "sub": (lambda a, b: a - b, np.subtract, "any", "any"),
    "mul": (lambda a, b: a * b, np.multiply, "any", "any"),
    "div": (lambda a, b: a / b, np.divide, "any", "gap"),
    "pow": (lambda a, b: a**b, np.power, "pos", "any"),
    "add_fn": (minae.add, np.add, "any", "any"),
    "sub_fn": (minae.sub, np.subtract, "any", "any"),
    "mul_fn": (minae.mul, np.multiply, "any", "any"),
    "div_fn": (minae.div, np.divide, "any", "gap"),
    "pow_fn": (minae.pow, np.power, "pos", "any"),
    "maximum": (minae.maximum, np.maximum, "int", "half"),
    "minimum": (minae.minimum, np.minimum, "half", "int"),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@hyp
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4), seed=seeds)
def test_binary_broadcast_forward_and_gradcheck(leaf64, name, device, shapes, seed):
    fn, ref, ka, kb = BINARY[name]
    rng = np.random.default_rng(seed)
    sa, sb = shapes.input_shapes
    a, b = values(rng, sa, ka), values(rng, sb, kb)
    x, y = leaf64(a, device), leaf64(b, device)
    out = fn(x, y)
    assert tuple(out.shape) == shapes.result_shape
    check_forward(out, ref(a, b))
    assert minae.gradcheck(fn, [x, y])


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow", "maximum", "minimum"])
def test_binary_gradgradcheck(leaf64, name, device):
    fn, _, ka, kb = BINARY[name]
    rng = np.random.default_rng(3)
    a, b = values(rng, (2, 3), ka), values(rng, (3,), kb)
    assert minae.gradgradcheck(fn, [leaf64(a, device), leaf64(b, device)])


# constants (Python numbers and raw arrays) on either side of every operator
SCALAR_CASES = {
    "x + 2.5": (lambda x: x + 2.5, lambda a: a + 2.5, "any"),
    "2.5 + x": (lambda x: 2.5 + x, lambda a: 2.5 + a, "any"),
    "x - 2": (lambda x: x - 2, lambda a: a - 2, "any"),
    "2 - x": (lambda x: 2 - x, lambda a: 2 - a, "any"),
    "x * 3": (lambda x: x * 3, lambda a: a * 3, "any"),
    "3.5 * x": (lambda x: 3.5 * x, lambda a: 3.5 * a, "any"),
    "x / 4": (lambda x: x / 4, lambda a: a / 4, "any"),
    "4 / x": (lambda x: 4 / x, lambda a: 4 / a, "gap"),
    "x ** 2": (lambda x: x**2, lambda a: a**2, "any"),
    "x ** 2.5": (lambda x: x**2.5, lambda a: a**2.5, "pos"),
    "3 ** x": (lambda x: 3**x, lambda a: 3.0**a, "any"),
    "0.5 ** x": (lambda x: 0.5**x, lambda a: 0.5**a, "any"),
    "-x": (lambda x: -x, lambda a: -a, "any"),
}


@pytest.mark.parametrize("case", sorted(SCALAR_CASES))
def test_python_scalar_either_side(leaf64, case, device):
    fn, ref, kind = SCALAR_CASES[case]
    a = values(np.random.default_rng(4), (2, 3), kind)
    x = leaf64(a, device)
    check_forward(fn(x), ref(a))
    assert minae.gradcheck(fn, [x])
    assert minae.gradgradcheck(fn, [x])


ARRAY_CASES = {
    "x + c": (lambda x, c: x + c, np.add),
    "c + x": (lambda x, c: c + x, lambda a, c: c + a),
    "x - c": (lambda x, c: x - c, np.subtract),
    "c - x": (lambda x, c: c - x, lambda a, c: c - a),
    "x * c": (lambda x, c: x * c, np.multiply),
    "c * x": (lambda x, c: c * x, lambda a, c: c * a),
    "x / c": (lambda x, c: x / c, np.divide),
    "c / x": (lambda x, c: c / x, lambda a, c: c / a),
    "x ** c": (lambda x, c: x**c, np.power),
    "c ** x": (lambda x, c: c**x, lambda a, c: c**a),
    "maximum(x, c)": (lambda x, c: minae.maximum(x, c), np.maximum),
    "minimum(c, x)": (lambda x, c: minae.minimum(c, x), lambda a, c: np.minimum(c, a)),
    "where(m, x, c)": (lambda x, c: minae.where(minae.tensor(c) > 1.25, x, c), lambda a, c: np.where(c > 1.25, a, c)),
}


@pytest.mark.parametrize("x_shape, c_shape", [((2, 3), (3,)), ((3,), (2, 3)), ((2, 1), (1, 3))])
@pytest.mark.parametrize("case", sorted(ARRAY_CASES))
def test_raw_array_either_side(leaf64, case, x_shape, c_shape, device):
    fn, ref = ARRAY_CASES[case]
    rng = np.random.default_rng(5)
    # x in [0.5, 1] and c in [1.5, 2]: positive for the powers and never tied
    a, c = rng.uniform(0.5, 1.0, x_shape), rng.uniform(1.5, 2.0, c_shape)
    x = leaf64(a, device)
    out = fn(x, raw(c, device))
    assert isinstance(out, minae.Tensor) and out.requires_grad
    check_forward(out, ref(a, c))
    assert minae.gradcheck(lambda t: fn(t, raw(c, device)), [x])


def test_numpy_scalars_are_constants(leaf64, device):
    a = values(np.random.default_rng(6), (3,), "pos")
    x = leaf64(a, device)
    for fn, ref in [
        (lambda t: t * np.float64(2.0), lambda v: v * 2.0),
        (lambda t: np.float64(2.0) * t, lambda v: v * 2.0),
        (lambda t: t ** np.float32(2.0), lambda v: v**2.0),
        (lambda t: np.int64(3) - t, lambda v: 3 - v),
    ]:
        check_forward(fn(x), ref(a))
        assert minae.gradcheck(fn, [x])


# -------------------------------------------------------- maximum / minimum ---
def test_maximum_minimum_ties_split_the_gradient(leaf64, device):
    """PyTorch's rule: where a == b each side gets half the gradient."""
    a = leaf64(np.array([1.0, 2.0, 3.0]), device)
    b = leaf64(np.array([1.0, 5.0, 0.0]), device)
    for fn, ga, gb in [
        (minae.maximum, [0.5, 0.0, 1.0], [0.5, 1.0, 0.0]),
        (minae.minimum, [0.5, 1.0, 0.0], [0.5, 0.0, 1.0]),
    ]:
        da, db = minae.grad(fn(a, b).sum(), [a, b])
        np.testing.assert_array_equal(da.numpy(), ga)
        np.testing.assert_array_equal(db.numpy(), gb)


def test_maximum_with_number_ties_and_broadcast(leaf64, device):
    x = leaf64(np.array([[-1.0, 0.0, 2.0]]), device)
    y = minae.maximum(x, 0.0)
    check_forward(y, [[0.0, 0.0, 2.0]])
    (g,) = minae.grad(y.sum(), x)
    np.testing.assert_array_equal(g.numpy(), [[0.0, 0.5, 1.0]])
    # a broadcast tie: b (shape (1,)) ties two elements of a, and collects half of each
    a, b = leaf64(np.array([1.0, 1.0, 0.0]), device), leaf64(np.array([1.0]), device)
    da, db = minae.grad(minae.minimum(a, b).sum(), [a, b])
    np.testing.assert_array_equal(da.numpy(), [0.5, 0.5, 1.0])
    np.testing.assert_array_equal(db.numpy(), [1.0])


# ---------------------------------------------------------------- where ---
@hyp
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=4), seed=seeds)
def test_where_broadcast(leaf64, device, shapes, seed):
    rng = np.random.default_rng(seed)
    sc, sa, sb = shapes.input_shapes
    cond = rng.random(sc) > 0.5
    a, b = values(rng, sa), values(rng, sb)
    x, y = leaf64(a, device), leaf64(b, device)
    c = minae.tensor(cond, device=device)
    assert c.dtype == minae.bool_
    check_forward(minae.where(c, x, y), np.where(cond, a, b))
    assert minae.gradcheck(lambda p, q: minae.where(c, p, q), [x, y])
    # a raw mask and a number on one side work too
    check_forward(minae.where(c.data, x, 0.0), np.where(cond, a, 0.0))
    assert minae.gradcheck(lambda p: minae.where(c.data, 0.0, p), [x])


def test_where_gradgradcheck_and_routing(leaf64, device):
    rng = np.random.default_rng(7)
    cond = minae.tensor(np.array([[True, False, True], [False, False, True]]), device=device)
    x, y = leaf64(values(rng, (2, 3)), device), leaf64(values(rng, (3,)), device)
    assert minae.gradgradcheck(lambda p, q: minae.where(cond, p * p, q * p), [x, y])
    gx, gy = minae.grad(minae.where(cond, x, y).sum(), [x, y])
    np.testing.assert_array_equal(gx.numpy(), cond.numpy().astype(float))
    np.testing.assert_array_equal(gy.numpy(), (~cond.numpy()).sum(0))


def test_where_rejects_non_boolean_condition(leaf64, device):
    x = leaf64(np.ones(3), device)
    with pytest.raises(TypeError, match="boolean"):
        minae.where(x, x, x)


# ---------------------------------------------------------------- matmul ---
MATMUL_SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 2)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((2, 2, 3), (3,)),
    ((3,), (2, 3, 4)),
    ((4, 2, 3), (4, 3, 2)),
    ((2, 1, 2, 3), (4, 3, 2)),
    ((2, 3), (2, 3, 1)),
]


@pytest.mark.parametrize("sa, sb", MATMUL_SHAPES, ids=[f"{a}@{b}" for a, b in MATMUL_SHAPES])
def test_matmul(leaf64, sa, sb, device):
    rng = np.random.default_rng(8)
    a, b = values(rng, sa), values(rng, sb)
    x, y = leaf64(a, device), leaf64(b, device)
    check_forward(x @ y, np.matmul(a, b))
    check_forward(minae.matmul(x, y), np.matmul(a, b))
    assert minae.gradcheck(lambda p, q: p @ q, [x, y])
    assert minae.gradgradcheck(lambda p, q: p @ q, [x, y])


@hyp
@given(shapes=hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=2, max_side=3), seed=seeds)
def test_matmul_random_shapes(leaf64, device, shapes, seed):
    rng = np.random.default_rng(seed)
    sa, sb = shapes.input_shapes
    a, b = values(rng, sa), values(rng, sb)
    x, y = leaf64(a, device), leaf64(b, device)
    check_forward(x @ y, np.matmul(a, b))
    assert minae.gradcheck(minae.matmul, [x, y])


def test_matmul_with_raw_arrays_either_side(leaf64, device):
    rng = np.random.default_rng(9)
    a, m = values(rng, (2, 3)), values(rng, (3, 3))
    x = leaf64(a, device)
    check_forward(x @ raw(m, device), a @ m)
    check_forward(raw(m, device) @ x.T, m @ a.T)
    assert minae.gradcheck(lambda t: t @ raw(m, device), [x])
    assert minae.gradcheck(lambda t: raw(m, device) @ t.T, [x])


# ------------------------------------------------------------- reductions ---
def _lse_ref(a, axis, keepdims):
    m = np.max(a, axis=axis, keepdims=True)
    y = m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))
    return y if keepdims else np.squeeze(y, axis=axis)


REDUCTIONS = {
    "sum": (lambda t, d, k: t.sum(d, k), lambda a, d, k: np.sum(a, axis=d, keepdims=k)),
    "sum_fn": (lambda t, d, k: minae.sum(t, dim=d, keepdim=k), lambda a, d, k: np.sum(a, axis=d, keepdims=k)),
    "mean": (lambda t, d, k: t.mean(d, keepdim=k), lambda a, d, k: np.mean(a, axis=d, keepdims=k)),
    "var": (lambda t, d, k: t.var(d, keepdim=k), lambda a, d, k: np.var(a, axis=d, keepdims=k, ddof=1)),
    "var_biased": (
        lambda t, d, k: minae.var(t, d, keepdim=k, unbiased=False),
        lambda a, d, k: np.var(a, axis=d, keepdims=k),
    ),
    "max": (
        lambda t, d, k: t.max() if d is None else t.max(d, keepdim=k).values,
        lambda a, d, k: np.max(a) if d is None else np.max(a, axis=d, keepdims=k),
    ),
    "min": (
        lambda t, d, k: minae.min(t) if d is None else minae.min(t, d, k)[0],
        lambda a, d, k: np.min(a) if d is None else np.min(a, axis=d, keepdims=k),
    ),
    "logsumexp": (lambda t, d, k: t.logsumexp(d, keepdim=k), _lse_ref),
}
DIMS = [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2)]


def _dim_ok(name, dim):
    # max/min with a tuple dim is not PyTorch's API (amax is); logsumexp needs a dim
    return not (name in ("max", "min") and isinstance(dim, tuple))


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS, ids=str)
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction(leaf64, name, dim, keepdim, device):
    if not _dim_ok(name, dim) or (dim is None and keepdim and name in ("max", "min")):
        pytest.skip("not an API form")
    fn, ref = REDUCTIONS[name]
    a = values(np.random.default_rng(10), (2, 3, 4))
    x = leaf64(a, device)
    check_forward(fn(x, dim, keepdim), ref(a, dim, keepdim))
    assert minae.gradcheck(lambda t: fn(t, dim, keepdim), [x])


@pytest.mark.parametrize("dim", [None, 1, (0, -1)], ids=str)
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction_gradgradcheck(leaf64, name, dim, device):
    if not _dim_ok(name, dim):
        pytest.skip("not an API form")
    fn, _ = REDUCTIONS[name]
    x = leaf64(values(np.random.default_rng(11), (2, 3, 2)), device)
    # square first, so that the second derivative of the composition is not zero
    assert minae.gradgradcheck(lambda t: fn(t * t, dim, False), [x])


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@hyp
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), data=st.data(), seed=seeds)
def test_reduction_random_shapes(leaf64, name, device, shape, data, seed):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    keepdim = data.draw(st.booleans(), label="keepdim")
    fn, ref = REDUCTIONS[name]
    if name.startswith("var") and shape[dim % len(shape)] == 1:
        return  # the unbiased variance of one element is 0/0
    a = values(np.random.default_rng(seed), shape)
    x = leaf64(a, device)
    check_forward(fn(x, dim, keepdim), ref(a, dim, keepdim))
    assert minae.gradcheck(lambda t: fn(t, dim, keepdim), [x])


def test_max_min_with_dim_return_values_and_indices(leaf64, device):
    a = np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    x = leaf64(a, device)
    values_, indices = x.max(dim=1)
    check_forward(values_, [5.0, 7.0])
    assert indices.tolist() == [1, 0] and not indices.requires_grad
    v, i = minae.min(x, dim=0, keepdim=True)
    check_forward(v, [[1.0, 0.0, 2.0]])
    assert i.tolist() == [[0, 1, 0]]
    assert x.argmax().item() == 3 and x.argmin(dim=1).tolist() == [0, 1]


def test_max_ties_share_the_gradient(leaf64, device):
    x = leaf64(np.array([1.0, 3.0, 3.0, 2.0]), device)
    (g,) = minae.grad(x.max(), x)
    np.testing.assert_array_equal(g.numpy(), [0.0, 0.5, 0.5, 0.0])
    (g,) = minae.grad(minae.min(-x), x)
    np.testing.assert_array_equal(g.numpy(), [0.0, -0.5, -0.5, 0.0])


def test_max_min_with_dim_send_the_gradient_to_the_returned_index(leaf64, device):
    # max(dim) is a selection (PyTorch's rule): ties do not share; the first element that attains it gets it all
    x = leaf64(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [5.0, 0.0, 5.0]]), device)
    w = np.array([1.0, 2.0, 3.0])
    for fn, keepdim, want in [
        (minae.max, False, [[0, 1, 0], [2, 0, 0], [3, 0, 0]]),
        (minae.max, True, [[0, 1, 0], [2, 0, 0], [3, 0, 0]]),
        (minae.min, False, [[1, 0, 0], [2, 0, 0], [0, 3, 0]]),
    ]:
        values_, indices = fn(x, 1, keepdim)
        weights = minae.tensor(w.reshape(-1, 1) if keepdim else w, dtype=minae.float64, device=device)
        (g,) = minae.grad((values_ * weights).sum(), x)
        np.testing.assert_array_equal(g.numpy(), want)
        hit = np.zeros((3, 3))
        np.put_along_axis(hit, indices.numpy().reshape(3, 1), 1.0, axis=1)
        assert (np.asarray(want) != 0).sum() == 3 and ((np.asarray(want) != 0) <= hit).all()


def test_max_min_gradients_at_ties_and_nan_match_pytorch():
    torch = pytest.importorskip("torch")
    rows = [[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [5.0, np.nan, 5.0], [np.nan, 0.0, np.nan]]
    cases = [
        lambda lib, t: t.max(dim=1)[0],
        lambda lib, t: t.min(dim=0)[0],
        lambda lib, t: t.max(dim=0, keepdim=True)[0],
        lambda lib, t: t.max(),
        lambda lib, t: t.min(),
        lambda lib, t: t[0:2].max(),
    ]
    for case in cases:
        got, want = [], []
        for lib, out in ((minae, got), (torch, want)):
            t = lib.tensor(rows, dtype=lib.float64, requires_grad=True)
            y = case(lib, t)
            (y * lib.arange(1, y.numel() + 1, dtype=lib.float64).reshape(y.shape)).sum().backward()
            out.append(np.asarray(t.grad.numpy() if lib is minae else t.grad.detach().numpy()))
        np.testing.assert_array_equal(got[0], want[0])


def test_max_with_dim_reads_no_output_so_its_values_may_be_written(leaf64):
    x = leaf64([[1.0, 4.0], [3.0, 2.0]])
    v = x.max(dim=1).values
    v += 1  # PyTorch allows it: max(dim)'s backward needs only x
    (v * v).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, 10.0], [8.0, 0.0]])


def test_clamp_with_tensor_bounds_sends_their_gradients(leaf64):
    # y = x inside [lo, hi] (boundaries included), lo below it, hi above it; and hi wins where lo > hi (PyTorch)
    x = leaf64([1.0, 2.0, 3.0, 0.0])
    lo = leaf64([2.0, 2.0, 2.0, -1.0])
    hi = leaf64([1.5, 2.5, 2.5, 1.0])
    y = x.clamp(lo, hi)
    (y * minae.tensor([1.0, 2.0, 3.0, 4.0], dtype=minae.float64)).sum().backward()
    np.testing.assert_array_equal(y.numpy(), [1.5, 2.0, 2.5, 0.0])
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 2.0, 0.0, 4.0])
    np.testing.assert_array_equal(lo.grad.numpy(), [0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(hi.grad.numpy(), [1.0, 0.0, 3.0, 0.0])
    m = leaf64([0.5])  # broadcast, one bound only
    (g_x, g_m) = minae.grad(x.clamp(max=m).sum(), [x, m])
    np.testing.assert_array_equal(g_x.numpy(), [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(g_m.numpy(), [3.0])
    torch = pytest.importorskip("torch")
    tx, tlo, thi = (torch.tensor(t.numpy(), requires_grad=True) for t in (x, lo, hi))
    (tx.clamp(tlo, thi) * torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)).sum().backward()
    for t, mt in ((tx, x), (tlo, lo), (thi, hi)):
        np.testing.assert_array_equal(mt.grad.numpy(), t.grad.numpy())


def test_var_correction_and_mean_of_scalar(leaf64, device):
    a = values(np.random.default_rng(12), (3, 4))
    x = leaf64(a, device)
    check_forward(x.var(correction=0), np.var(a))
    check_forward(x.var(1, correction=2), np.var(a, axis=1, ddof=2))
    check_forward(x.var(0, unbiased=True), np.var(a, axis=0, ddof=1))
    s = leaf64(np.array(2.5), device)
    check_forward(s.sum(), 2.5)
    check_forward(s.mean(0), 2.5)


def test_logsumexp_is_stable(leaf64, device):
    a = np.array([[1000.0, 1000.0], [-1000.0, -1001.0]])
    x = leaf64(a, device)
    y = x.logsumexp(1)
    check_forward(y, [1000.0 + np.log(2.0), -1000.0 + np.log1p(np.exp(-1.0))])
    (g,) = minae.grad(y.sum(), x)
    np.testing.assert_allclose(g.numpy(), [[0.5, 0.5], [1 / (1 + np.exp(-1)), 1 / (1 + np.exp(1))]])


def test_reduction_dim_out_of_range(leaf64, device):
    x = leaf64(np.ones((2, 3)), device)
    with pytest.raises(IndexError, match="dim 2"):
        x.sum(2)


# ----------------------------------------------------------- shape ops ---
SHAPE_OPS = {
    "reshape": (lambda t: t.reshape(4, 6), lambda a: a.reshape(4, 6)),
    "reshape_tuple_-1": (lambda t: minae.reshape(t, (-1, 3)), lambda a: a.reshape(-1, 3)),
    "view": (lambda t: t.view(2, 12), lambda a: a.reshape(2, 12)),
    "view_fn": (lambda t: minae.view(t, -1), lambda a: a.reshape(-1)),
    "flatten": (lambda t: t.flatten(), lambda a: a.reshape(-1)),
    "flatten_1": (lambda t: minae.flatten(t, 1), lambda a: a.reshape(2, 12)),
    "flatten_0_1": (lambda t: t.flatten(0, 1), lambda a: a.reshape(6, 4)),
    "transpose": (lambda t: t.transpose(0, 2), lambda a: a.transpose(2, 1, 0)),
    "transpose_neg": (lambda t: minae.transpose(t, -1, -2), lambda a: a.transpose(0, 2, 1)),
    "permute": (lambda t: t.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1)),
    "permute_tuple": (lambda t: minae.permute(t, (1, 2, 0)), lambda a: a.transpose(1, 2, 0)),
    "T": (lambda t: t.T, lambda a: a.T),
    "mT": (lambda t: t.mT, lambda a: np.swapaxes(a, -1, -2)),
    "unsqueeze": (lambda t: t.unsqueeze(1), lambda a: a[:, None]),
    "unsqueeze_neg": (lambda t: minae.unsqueeze(t, -1), lambda a: a[..., None]),
    "squeeze_all": (lambda t: t.unsqueeze(0).unsqueeze(-1).squeeze(), lambda a: a),
    "squeeze_dim": (lambda t: t.unsqueeze(2).squeeze(2), lambda a: a),
    "squeeze_noop": (lambda t: minae.squeeze(t, 0), lambda a: a),
    "expand": (lambda t: t[:, :1].expand(2, 5, 4), lambda a: np.broadcast_to(a[:, :1], (2, 5, 4))),
    "expand_-1_new_dim": (lambda t: t.expand(3, -1, -1, -1), lambda a: np.broadcast_to(a, (3, 2, 3, 4))),
    "broadcast_to": (
        lambda t: minae.broadcast_to(t[0, :, :1], (2, 3, 5)),
        lambda a: np.broadcast_to(a[0, :, :1], (2, 3, 5)),
    ),
    "expand_as": (lambda t: t[:1].expand_as(t), lambda a: np.broadcast_to(a[:1], a.shape)),
}


@pytest.mark.parametrize("name", sorted(SHAPE_OPS))
def test_shape_op(leaf64, name, device):
    fn, ref = SHAPE_OPS[name]
    a = values(np.random.default_rng(13), (2, 3, 4))
    x = leaf64(a, device)
    check_forward(fn(x), ref(a), rtol=0, atol=0)
    assert minae.gradcheck(fn, [x])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_and_stack(leaf64, dim, device):
    rng = np.random.default_rng(14)
    a, b, c = values(rng, (2, 3)), values(rng, (2, 3)), values(rng, (2, 3))
    x, y, z = leaf64(a, device), leaf64(b, device), leaf64(c, device)
    check_forward(minae.stack([x, y, z], dim), np.stack([a, b, c], dim))
    assert minae.gradcheck(lambda p, q, r: minae.stack([p, q, r], dim), [x, y, z])
    if dim != 1:
        cat_b = values(rng, (2, 1)) if dim == -1 else values(rng, (4, 3))
        w = leaf64(cat_b, device)
        check_forward(minae.cat([x, w, z], dim), np.concatenate([a, cat_b, c], dim))
        assert minae.gradcheck(lambda p, q, r: minae.cat((p, q, r), dim=dim), [x, w, z])
    # a constant among the pieces gets no gradient, the others do
    const = minae.tensor(b, device=device, dtype=minae.float64)
    gx, gz = minae.grad((minae.cat([x, const, z], dim) ** 2).sum(), [x, z])
    np.testing.assert_allclose(gx.numpy(), 2 * a)
    np.testing.assert_allclose(gz.numpy(), 2 * c)


def test_cat_stack_errors(leaf64, device):
    x, y = leaf64(np.ones((2, 3)), device), leaf64(np.ones((3, 2)), device)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        minae.cat([x, y], 0)
    with pytest.raises(ValueError, match="same shape"):
        minae.stack([x, y])


def test_shape_ops_gradgradcheck(leaf64, device):
    x = leaf64(values(np.random.default_rng(15), (2, 3)), device)
    y = leaf64(values(np.random.default_rng(16), (3, 2)), device)
    assert minae.gradgradcheck(lambda t: (t.reshape(3, 2) * t.T).permute(1, 0).unsqueeze(0).expand(2, 2, 3), [x])
    assert minae.gradgradcheck(lambda p, q: minae.cat([p * p, q.T * p], 1).flatten(), [x, y])


# --------------------------------------------------------------- indexing ---
# name: the index, made from the input's values `a` (masks) on `device`
INDEXES = {
    "int": lambda a, dev: 1,
    "negative_int": lambda a, dev: -1,
    "slices": lambda a, dev: (slice(None), slice(1, 3)),
    "steps": lambda a, dev: (slice(None, None, 2), slice(None, None, -1), slice(1, None, 2)),
    "ellipsis": lambda a, dev: (Ellipsis, 0),
    "newaxis": lambda a, dev: (None, 1, slice(None), None),
    "element": lambda a, dev: (0, 1, 2),
    "mask_array": lambda a, dev: minae.tensor(a > 0, device=dev).data,
    "mask_tensor": lambda a, dev: minae.tensor(a > 0, device=dev),
    "row_mask": lambda a, dev: minae.tensor([True, False, True, True], device=dev),
    "int_list_repeats": lambda a, dev: [0, 0, 3, 0],
    "int_array_repeats": lambda a, dev: np.array([2, 0, 2]),
    "int_tensor_repeats": lambda a, dev: minae.tensor([[1, 1], [3, 1]], device=dev),
    "two_int_lists": lambda a, dev: ([0, 1, 0], [2, 2, 2]),
    "slice_and_list": lambda a, dev: (slice(None), [1, 1, 0], slice(1, None)),
    "int_and_list": lambda a, dev: (2, [0, 2, 0]),
}


def _host_key(key):
    """The same index for the NumPy reference."""
    if isinstance(key, tuple):
        return tuple(_host_key(k) for k in key)
    if isinstance(key, minae.Tensor):
        return key.numpy()
    if hasattr(key, "get"):  # a CuPy array
        return key.get()
    return key


@pytest.mark.parametrize("name", sorted(INDEXES))
def test_indexing(leaf64, name, device):
    a = values(np.random.default_rng(17), (4, 3, 3), "gap")
    key = INDEXES[name](a, device)
    x = leaf64(a, device)
    check_forward(x[key], a[_host_key(key)], rtol=0, atol=0)
    check_forward(minae.getitem(x, key), a[_host_key(key)], rtol=0, atol=0)
    assert minae.gradcheck(lambda t: t[key], [x])
    assert minae.gradgradcheck(lambda t: (t * t)[key], [x])


def test_repeated_indices_accumulate(leaf64, device):
    x = leaf64(np.zeros(4), device)
    y = x[[0, 0, 2, 0]]
    (y * minae.tensor([1.0, 2.0, 3.0, 4.0], dtype=minae.float64, device=device)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [7.0, 0.0, 3.0, 0.0])
    m = leaf64(np.zeros((2, 2)), device)
    m[[1, 1], [0, 0]].sum().backward()
    np.testing.assert_array_equal(m.grad.numpy(), [[0.0, 0.0], [2.0, 0.0]])


def test_mask_and_int_tensor_forward(leaf64, device):
    a = np.arange(12.0).reshape(3, 4)
    x = leaf64(a, device)
    check_forward(x[x > 5], a[a > 5])
    check_forward(x[minae.tensor([2, 0, 2], device=device)], a[[2, 0, 2]])
    check_forward(x[minae.tensor([True, False, True], device=device)], a[[True, False, True]])


def test_index_out_of_range_names_shape(leaf64, device):
    x = leaf64(np.ones((2, 3)), device)
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        x[5]


def test_iteration_yields_rows_with_gradients(leaf64, device):
    x = leaf64(values(np.random.default_rng(18), (3, 2)), device)
    rows = list(x)
    assert len(rows) == 3 and rows[1].shape == (2,)
    (rows[0] * 2 + rows[2]).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2, 2], [0, 0], [1, 1]])


# ------------------------------------------------------------ dtype casts ---
def test_to_dtype_is_differentiable(leaf64, device):
    a = values(np.random.default_rng(19), (2, 3))
    x64 = leaf64(a, device)
    # float64 -> float32 -> float64 loses precision, so a coarser eps and tolerance
    assert minae.gradcheck(lambda t: t.to(minae.float32).to(minae.float64) * 3, [x64], eps=1e-3, atol=1e-3)
    x32 = minae.tensor(a, dtype=minae.float32, device=device, requires_grad=True)
    y = x32.to(minae.float64)
    assert y.dtype == minae.float64 and y.requires_grad
    (y * y).sum().backward()
    assert x32.grad.dtype == minae.float32
    np.testing.assert_allclose(x32.grad.numpy(), 2 * a.astype(np.float32), rtol=1e-6)
    for cast in (x32.double(), minae.cast(x32, "float64"), x32.type(np.float64), x32.to(dtype="float64")):
        assert cast.dtype == minae.float64 and cast.grad_fn is not None
    assert x32.float() is x32 and x32.to(minae.float32) is x32


def test_cast_to_integer_leaves_the_graph(leaf64, device):
    x = leaf64(np.array([1.5, -2.5]), device)
    y = x.to(minae.int64)
    assert y.dtype == minae.int64 and y.tolist() == [1, -2]
    assert not y.requires_grad and y.grad_fn is None


def test_clone_is_a_differentiable_copy(leaf64, device):
    x = leaf64(np.array([1.0, 2.0]), device)
    y = x.clone()
    assert y.data is not x.data and y.grad_fn is not None
    with backend.on(y.device):  # raw arrays: CuPy writes on the current GPU
        y.data[0] = 5.0
    assert x.tolist() == [1.0, 2.0]
    assert minae.gradcheck(lambda t: t.clone() * t, [x])


# ------------------------------------------------------------------ fused ops ---
@pytest.mark.parametrize("bias", [True, False])
def test_fused_linear(leaf64, device, bias):
    rng = np.random.default_rng(21)
    a, w, b = values(rng, (4, 3)), values(rng, (5, 3)), values(rng, (5,))
    x, W = leaf64(a, device), leaf64(w, device)
    B = leaf64(b, device) if bias else None
    check_forward(minae.ops.linear(x, W, B), a @ w.T + (b if bias else 0))
    inputs = [x, W] + ([B] if bias else [])

    def fn(x, W, *rest):
        return minae.ops.linear(x, W, rest[0] if rest else None)

    assert minae.gradcheck(fn, inputs)
    assert minae.gradgradcheck(fn, inputs)


def test_fused_linear_skips_gradients_nobody_asked_for(leaf64, device):
    rng = np.random.default_rng(22)
    x = leaf64(values(rng, (4, 3)), device, requires_grad=False)
    W, B = leaf64(values(rng, (5, 3)), device), leaf64(values(rng, (5,)), device)
    minae.ops.linear(x, W, B).sum().backward()
    assert x.grad is None and W.grad is not None and B.grad is not None


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fused_bce_with_logits(leaf64, device, dtype):
    rng = np.random.default_rng(23)
    a = rng.uniform(-4, 4, (3, 5))
    t = rng.uniform(0, 1, (3, 5))
    expected = -(t * np.log(sigmoid_ref(a)) + (1 - t) * np.log(1 - sigmoid_ref(a)))
    x = minae.tensor(a, dtype=dtype, device=device)
    y = minae.tensor(t, dtype=dtype, device=device)
    out = minae.ops.binary_cross_entropy_with_logits(x, y)
    assert out.dtype == np.dtype(dtype)
    tol = 1e-10 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(out.numpy(), expected, rtol=tol, atol=tol)
    if dtype == "float64":
        xl, yl = leaf64(a, device), leaf64(t, device)
        assert minae.gradcheck(minae.ops.binary_cross_entropy_with_logits, [xl, yl])
        assert minae.gradgradcheck(minae.ops.binary_cross_entropy_with_logits, [xl, yl])


def test_fused_bce_with_logits_extreme_logits(device):
    x = minae.tensor([-1e4, -30.0, 0.0, 30.0, 1e4], device=device, requires_grad=True)
    y = minae.tensor([0.0, 1.0, 0.5, 0.0, 1.0], device=device)
    out = minae.ops.binary_cross_entropy_with_logits(x, y)
    out.sum().backward()
    assert np.all(np.isfinite(out.numpy())) and np.all(np.isfinite(x.grad.numpy()))
    np.testing.assert_allclose(out.numpy(), [0.0, 30.0, np.log(2), 30.0, 0.0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), [0.0, -1.0, 0.0, 1.0, 0.0], atol=1e-6)


# ------------------------------------------------------- numerically honest (issue 17) ---
def _ulps(got, ref, dtype):
    """|got − ref| in units of the last place of ref (ref in long double), over the normal range of dtype."""
    ref = np.asarray(ref, np.longdouble)
    ok = np.abs(ref) >= np.finfo(dtype).tiny
    spacing = np.spacing(np.abs(ref[ok]).astype(dtype)).astype(np.longdouble)
    return np.max(np.abs(np.asarray(got, np.longdouble)[ok] - ref[ok]) / spacing)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_exact_to_a_few_ulp_over_the_whole_range(dtype):
    x = np.concatenate([np.linspace(-800, 800, 100_001), [-17.0, -20.0, -37.0, -88.0, -700.0, 1e-30, -1e-30]])
    x = x.astype(dtype)
    ref = 1 / (1 + np.exp(-x.astype(np.longdouble)))
    assert _ulps(minae.tensor(x).sigmoid().numpy(), ref, dtype) <= 4


def test_bce_of_a_sigmoid_in_the_left_tail_matches_pytorch():
    x = minae.tensor([-20.0, -17.0], requires_grad=True)  # σ(x) = 2.1e-9, 4.1e-8: was 0 and 44 % off
    loss = minae.nn.functional.binary_cross_entropy(x.sigmoid(), minae.tensor([1.0, 1.0]), reduction="sum")
    loss.backward()
    np.testing.assert_allclose(loss.item(), 37.0, rtol=1e-5)  # 20 + 17, PyTorch's value (was 100 + 17.6)
    np.testing.assert_allclose(x.grad.numpy(), [-1.0, -1.0], rtol=1e-5)  # (was 0 at −20)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softplus_and_bce_with_logits_keep_their_relative_precision_in_the_tails(dtype):
    x = np.array([-80.0, -30.0, -20.0, -5.0, 0.0, 1e-3, 5.0, 20.0, 30.0, 80.0], dtype)
    xl = x.astype(np.longdouble)
    tail = np.log1p(np.exp(-np.abs(xl)))
    softplus = tail + np.maximum(xl, 0)
    assert _ulps(minae.tensor(x).softplus().numpy(), softplus, dtype) <= 4
    for target in (0.0, 1.0):
        ref = (np.maximum(xl, 0) - xl * target) + tail  # tiny where the prediction is right
        got = minae.ops.binary_cross_entropy_with_logits(minae.tensor(x), minae.tensor(np.full_like(x, target)))
        assert _ulps(got.numpy(), ref, dtype) <= 4
    F = minae.nn.functional
    got = F.binary_cross_entropy_with_logits(
        minae.tensor(x), minae.tensor(np.zeros_like(x)), reduction="none", pos_weight=minae.tensor([2.0], dtype=dtype)
    )
    assert _ulps(got.numpy(), softplus, dtype) <= 4


def test_the_fast_float32_log1p_equals_numpy_log1p():
    e = np.concatenate([[0.0, 1e-45, 1e-30, 1e-8, 6e-8, 1.2e-7], np.geomspace(1e-7, 1.0, 100_000)]).astype(np.float32)
    ref = np.log1p(e.astype(np.float64))
    assert _ulps(minae.ops._log1p_fast(e), ref, np.float32) <= 4
    assert minae.ops.array_log1p(e).dtype == np.float32


def _log1p_whole(e):
    """The fenced _log1p_fast's plain rule: the same operations on the whole array at once."""
    u = e + 1
    rounding = u - 1
    rounding -= e
    rounding /= u
    return np.log(u) - rounding


def test_the_fast_log1p_in_blocks_equals_its_plain_rule_bit_for_bit():
    rng = np.random.default_rng(5)
    n = minae.ops._LOG1P_BLOCK
    for e in [
        np.exp(-np.abs(rng.normal(0, 4, 2 * n + 17))).astype(np.float32),  # several blocks, a short last one
        np.exp(-np.abs(rng.normal(0, 4, (300, 130)))).astype(np.float32).T,  # not contiguous
        np.float32(0.25) * np.ones((), np.float32),  # 0-d
        np.zeros((0, 3), np.float32),
    ]:
        got = minae.ops._log1p_fast(e)
        assert got.shape == e.shape and got.dtype == np.float32
        np.testing.assert_array_equal(got, _log1p_whole(e))


def test_bce_with_logits_holds_no_extra_batch_sized_buffer(peak_bytes):
    # e, the loss and log1p's u: three arrays of the batch's size at most beside the inputs (a fourth was the
    # largest buffer of a VAE step's peak memory)
    rng = np.random.default_rng(6)
    x, t = rng.normal(0, 3, (256, 784)).astype(np.float32), rng.uniform(0, 1, (256, 784)).astype(np.float32)
    peak = peak_bytes(lambda: minae.ops.bce_with_logits_forward(x, t))
    assert peak < 3.5 * x.nbytes, peak / x.nbytes
    e, loss = minae.ops.bce_with_logits_forward(x, t)
    ref = (np.maximum(x, 0) - x * t) + _log1p_whole(np.exp(-np.abs(x)))
    np.testing.assert_array_equal(loss, ref)


def test_powers_of_a_zero_base_have_pytorchs_gradients(leaf64):
    torch = pytest.importorskip("torch")
    for base, exponent in [([0.0, 0.0, 2.0], [0.0, 2.0, 0.0]), ([0.0, 1.0], [0.5, 3.0])]:
        a, e = leaf64(base, "cpu"), leaf64(exponent, "cpu")
        (a**e).sum().backward()
        at = torch.tensor(base, dtype=torch.float64, requires_grad=True)
        et = torch.tensor(exponent, dtype=torch.float64, requires_grad=True)
        (at**et).sum().backward()
        np.testing.assert_allclose(a.grad.numpy(), at.grad.numpy())
        np.testing.assert_allclose(e.grad.numpy(), et.grad.numpy())
    x = leaf64([0.0, 1.0, 2.0], "cpu")
    (0.0**x).sum().backward()  # was: ValueError: math domain error
    xt = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    (0.0**xt).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy())


def test_grad_after_the_graph_was_freed_says_so(leaf64):
    x = leaf64([1.0, 2.0], "cpu")
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="a second time.*retain_graph=True"):
        minae.grad(y, x)


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4), (2, 1, 3, 4)])
def test_linear_takes_any_leading_dimensions(leaf64, shape):
    rng = np.random.default_rng(5)
    x, w, b = leaf64(rng.normal(size=shape)), leaf64(rng.normal(size=(5, 4))), leaf64(rng.normal(size=5))
    y = minae.ops.linear(x, w, b)
    np.testing.assert_allclose(y.numpy(), x.numpy() @ w.numpy().T + b.numpy(), rtol=1e-12)
    assert minae.gradcheck(minae.ops.linear, [x, w, b])

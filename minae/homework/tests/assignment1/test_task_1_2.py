"""Task 1.2: sum_to, the reduction that undoes broadcasting (SumTo.forward), and the backward that uses it."""

import minae
from minae.homework.testing import assert_close, assert_equal, one_op_gradcheck, rng

IDEA = (  # what every test of this file checks: a failing test's line names it
    "SumTo undoes broadcasting: broadcasting put new axes in front and stretched axes of size 1, so the sum "
    "runs over both, and the result has exactly the target shape"
)


def values(shape, seed):
    return rng(seed).standard_normal(shape)


# (shape of x, target shape, the expected sum written out for that case)
CASES = [
    ((2, 3, 4), (3, 4), lambda x: x.sum(axis=0)),
    ((2, 3, 4), (4,), lambda x: x.sum(axis=(0, 1))),
    ((3, 4), (1, 4), lambda x: x.sum(axis=0, keepdims=True)),
    ((3, 4), (3, 1), lambda x: x.sum(axis=1, keepdims=True)),
    ((3, 4), (1, 1), lambda x: x.sum(axis=(0, 1), keepdims=True)),
    ((3, 4), (), lambda x: x.sum()),
    ((2, 3, 4), (3, 1), lambda x: x.sum(axis=(0, 2))[:, None]),
    ((5, 1, 4), (1, 4), lambda x: x.sum(axis=0)),
    ((2, 3, 1, 4), (3, 1, 1), lambda x: x.sum(axis=(0, 3))[:, :, None]),
]


def test_sum_to_values():
    for k, (shape, target, expected) in enumerate(CASES):
        x = values(shape, k)
        got = minae.sum_to(minae.tensor(x, dtype=minae.float64), target)
        assert_close(got, expected(x), f"sum_to from {shape} to {target}", rtol=1e-10, atol=1e-12)


def test_sum_to_keeps_float32():
    x = minae.tensor(values((4, 3), 20), dtype=minae.float32)
    got = minae.sum_to(x, (1, 3))
    assert_equal(str(got.dtype), "float32", "sum_to of a float32 tensor gave dtype {actual}")
    assert_close(got, x.numpy().sum(axis=0, keepdims=True), "sum_to from (4, 3) to (1, 3) in float32", rtol=1e-5)


def test_sum_to_backward():
    x = minae.tensor(values((2, 3, 4), 30), dtype=minae.float64, requires_grad=True)
    one_op_gradcheck(lambda x: minae.sum_to(x, (3, 1)), [x], name="sum_to(x, (3, 1))")


def test_broadcast_to_backward():
    # broadcast_to's backward is sum_to: each input element gets the sum of the gradients of its copies
    x = minae.tensor(values((3, 1), 40), dtype=minae.float64, requires_grad=True)
    one_op_gradcheck(lambda x: minae.broadcast_to(x, (2, 3, 4)), [x], name="broadcast_to(x (3, 1), (2, 3, 4))")


def test_add_backward_broadcasting():
    a = minae.tensor(values((2, 3, 4), 50), dtype=minae.float64, requires_grad=True)
    b = minae.tensor(values((4,), 51), dtype=minae.float64, requires_grad=True)
    c = minae.tensor(values((3, 1), 52), dtype=minae.float64, requires_grad=True)
    d = minae.tensor(values((1, 4), 53), dtype=minae.float64, requires_grad=True)
    one_op_gradcheck(minae.add, [a, b], name="a (2, 3, 4) + b (4,)")
    one_op_gradcheck(minae.add, [c, d], name="c (3, 1) + d (1, 4)")


# BEGIN GRADER ONLY
def test_sum_to_drawn_shapes():
    # shapes drawn from the run's seed: new leading axes and size-1 axes anywhere
    g = rng(60)
    for k in range(3):
        ndim = int(g.integers(2, 5))
        full = tuple(int(n) for n in g.integers(2, 5, ndim))
        lead = int(g.integers(0, ndim))
        kept = g.random(ndim - lead) < 0.5
        target = tuple(n if keep else 1 for keep, n in zip(kept, full[lead:]))
        axes = tuple(range(lead)) + tuple(lead + i for i, keep in enumerate(kept) if not keep)
        x = values(full, 61 + k)
        expected = x.sum(axis=axes, keepdims=True).reshape(target)
        got = minae.sum_to(minae.tensor(x, dtype=minae.float64), target)
        assert_close(got, expected, f"sum_to from {full} to {target}", rtol=1e-10, atol=1e-12)


# END GRADER ONLY

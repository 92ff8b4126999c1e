"""Task 1.1: the backward of Exp, Log and Mul, each op checked alone against finite differences."""

import minae
from minae.homework.testing import leading_axes_sum_to, one_op_gradcheck, rng


def leaf(shape, seed, low=-1.5, high=1.5, requires_grad=True):
    values = rng(seed).uniform(low, high, shape)
    return minae.tensor(values, dtype=minae.float64, requires_grad=requires_grad)


def test_exp_backward():
    one_op_gradcheck(minae.exp, [leaf((3, 4), 0)], name="exp(x)")
    one_op_gradcheck(minae.exp, [leaf((), 1)], name="exp(x) of a 0-d x")


def test_log_backward():
    one_op_gradcheck(minae.log, [leaf((3, 4), 2, low=0.2, high=3.0)], name="log(x)")
    one_op_gradcheck(minae.log, [leaf((5,), 3, low=1e-2, high=0.1)], name="log(x) near 0")


def test_mul_backward():
    one_op_gradcheck(minae.mul, [leaf((3, 4), 4), leaf((3, 4), 5)], name="a * b")


def test_mul_backward_with_a_constant_and_with_itself():
    a, c = leaf((3, 4), 6), leaf((3, 4), 7, requires_grad=False)
    one_op_gradcheck(lambda a: a * c, [a], name="a * constant")
    one_op_gradcheck(lambda a: c * a, [a], name="constant * a")
    one_op_gradcheck(lambda a: a * a, [a], name="a * a")  # both inputs are a: the two gradients add up


def test_mul_backward_broadcasting():
    # b (4,) is broadcast over the rows of a (3, 4): its gradient is summed back to (4,) with sum_to
    # (here a stand-in that only drops leading axes, so that this test does not need task 1.2)
    with leading_axes_sum_to():
        one_op_gradcheck(minae.mul, [leaf((3, 4), 8), leaf((4,), 9)], name="a (3, 4) * b (4,)")
        one_op_gradcheck(minae.mul, [leaf((4,), 10), leaf((2, 3, 4), 11)], name="a (4,) * b (2, 3, 4)")

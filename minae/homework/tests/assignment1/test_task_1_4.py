"""Task 1.4: the backward of Sum and Mean, over everything and over chosen dimensions."""

import minae
from minae.homework.testing import one_op_gradcheck, rng

IDEA = (  # what every test of this file checks: a failing test's line names it
    "a reduction's backward: which output element did each input element go into? Its gradient is that "
    "element of gy, in the input's shape"
)


def leaf(shape, seed):
    values = rng(seed).standard_normal(shape)
    return minae.tensor(values, dtype=minae.float64, requires_grad=True)


def test_sum_backward_all():
    one_op_gradcheck(lambda x: x.sum(), [leaf((3, 4), 0)], name="x.sum()")


def test_sum_backward_dims():
    x = leaf((2, 3, 4), 1)
    one_op_gradcheck(lambda x: x.sum(dim=1), [x], name="x.sum(dim=1)")
    one_op_gradcheck(lambda x: x.sum(dim=-1), [x], name="x.sum(dim=-1)")
    one_op_gradcheck(lambda x: x.sum(dim=(0, 2)), [x], name="x.sum(dim=(0, 2))")


def test_sum_backward_keepdim():
    x = leaf((2, 3, 4), 2)
    one_op_gradcheck(lambda x: x.sum(dim=0, keepdim=True), [x], name="x.sum(dim=0, keepdim=True)")
    one_op_gradcheck(lambda x: x.sum(dim=(1, 2), keepdim=True), [x], name="x.sum(dim=(1, 2), keepdim=True)")


def test_mean_backward_all():
    one_op_gradcheck(lambda x: x.mean(), [leaf((3, 4), 3)], name="x.mean()")


def test_mean_backward_dims():
    x = leaf((2, 3, 4), 4)
    one_op_gradcheck(lambda x: x.mean(dim=1), [x], name="x.mean(dim=1)")
    one_op_gradcheck(lambda x: x.mean(dim=(0, 2), keepdim=True), [x], name="x.mean(dim=(0, 2), keepdim=True)")

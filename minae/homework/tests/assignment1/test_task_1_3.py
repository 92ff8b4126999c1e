"""Task 1.3: MatMul's backward, for matrices, vectors and batches, checked alone against finite differences."""

import minae
from minae.homework.testing import idea, leading_axes_sum_to, one_op_gradcheck, rng

IDEA = (  # what every test of this file checks: a failing test's line names it
    "MatMul's backward: write one entry y_ij as a sum over k, differentiate it by one entry of a and of b, "
    "read each as a matrix product of its input's shape"
)

BATCH = idea(
    "batch axes: the leading axes broadcast as in any op, so each input's gradient is summed over the batch axes it "
    "was stretched along or given, back to its own shape"
)


def leaf(shape, seed):
    values = rng(seed).standard_normal(shape)
    return minae.tensor(values, dtype=minae.float64, requires_grad=True)


def test_matmul_backward_matrices():
    one_op_gradcheck(minae.matmul, [leaf((3, 4), 0), leaf((4, 5), 1)], name="a (3, 4) @ b (4, 5)")


def test_matmul_backward_one_input_constant():
    a, b = leaf((3, 4), 2), leaf((4, 2), 3).detach()
    one_op_gradcheck(lambda a: a @ b, [a], name="a @ constant")
    one_op_gradcheck(lambda b_: a.detach() @ b_, [leaf((4, 2), 4)], name="constant @ b")


def test_matmul_backward_vectors():
    one_op_gradcheck(minae.matmul, [leaf((4,), 5), leaf((4, 5), 6)], name="v (4,) @ b (4, 5)")
    one_op_gradcheck(minae.matmul, [leaf((3, 4), 7), leaf((4,), 8)], name="a (3, 4) @ v (4,)")
    one_op_gradcheck(minae.matmul, [leaf((4,), 9), leaf((4,), 10)], name="u (4,) @ v (4,)")


@BATCH
def test_matmul_backward_batched():
    one_op_gradcheck(minae.matmul, [leaf((2, 3, 4), 11), leaf((2, 4, 5), 12)], name="a (2, 3, 4) @ b (2, 4, 5)")


@BATCH
def test_matmul_backward_broadcast_batch():
    # b (4, 5) is used by both matrices of the batch: its gradient is summed over the batch with sum_to
    # (here a stand-in that only drops leading axes, so that this test does not need task 1.2)
    with leading_axes_sum_to():
        one_op_gradcheck(minae.matmul, [leaf((2, 3, 4), 13), leaf((4, 5), 14)], name="a (2, 3, 4) @ b (4, 5)")
        one_op_gradcheck(minae.matmul, [leaf((3, 4), 15), leaf((2, 4, 5), 16)], name="a (3, 4) @ b (2, 4, 5)")

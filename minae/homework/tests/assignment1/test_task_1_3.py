"""Task 1.3: MatMul's backward, for matrices, vectors and batches, checked alone against finite differences."""

import minae
from minae.backend import np
from minae.homework.testing import assert_equal, helper, idea, leading_axes_sum_to, one_op_gradcheck, rng

IDEA = (  # what every test of this file checks: a failing test's line names it
    "MatMul's backward: write one entry y_ij as a sum over k, differentiate it by one entry of a and of b, "
    "read each as a matrix product of its input's shape"
)

BATCH = idea(
    "batch axes: the leading axes broadcast as in any op, so each input's gradient is summed over the batch axes it "
    "was stretched along or given, back to its own shape"
)

# why a gradient under create_graph must be built from tensor ops (the failure lines of the create_graph tests)
CREATE_GRAPH = (
    "(there gy and self.saved() are tensors: a gradient built from minae's tensor ops is itself a graph, which "
    "reaches what its value depends on; NumPy's functions and methods leave the graph or fail)"
)


def any_axes_sum_to():
    """Inside: sum_to undoes any broadcasting (the grader's own; in a copy, the copy's task 1.2)."""
    return helper("any_axes_sum_to")()


def leaf(shape, seed):
    values = rng(seed).standard_normal(shape)
    return minae.tensor(values, dtype=minae.float64, requires_grad=True)


def test_matmul_backward_matrices():
    one_op_gradcheck(minae.matmul, [leaf((3, 4), 0), leaf((4, 5), 1)], name="a (3, 4) @ b (4, 5)")
    # minae.grad(…, create_graph=True), double backprop: the gradient is itself a graph that reaches a and b
    g = rng(17)
    for a, b in (((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4,), (4, 5))):
        gy = minae.tensor(g.standard_normal((np.ones(a) @ np.ones(b)).shape), dtype=minae.float64)
        report = helper("create_graph_report")("matmul", gy, leaf(a, 18), leaf(b, 19))
        assert_equal(
            report,
            "∂/∂input 0 from gy, input 1; ∂/∂input 1 from gy, input 0",
            f"a {a} @ b {b} under create_graph=True (double backprop), MatMul.backward's gradients: {{actual}}; "
            "expected {expected} " + CREATE_GRAPH,
        )


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


@BATCH
def test_matmul_backward_several_and_stretched_batch_axes():
    # two batch axes added in front of one operand, and a batch axis of size 1 stretched against the other's:
    # each gradient is summed over every batch axis its input was stretched along, not only the first
    g = rng(20)
    k, j, n, p, m = (int(s) for s in g.integers(2, 5, 5))
    with any_axes_sum_to():
        for a, b, seed in (
            ((k, j, n, p), (p, m), 21),
            ((n, p), (k, j, p, m), 23),
            ((k, 1, n, p), (j, p, m), 25),
        ):
            one_op_gradcheck(minae.matmul, [leaf(a, seed), leaf(b, seed + 1)], name=f"a {a} @ b {b}")

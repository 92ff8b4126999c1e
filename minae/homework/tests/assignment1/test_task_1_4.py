"""Task 1.4: the backward of Sum and Mean, over everything and over chosen dimensions."""

import minae
from minae.homework.testing import assert_equal, helper, one_op_gradcheck, rng

# why a gradient under create_graph must be built from tensor ops (the failure lines of the create_graph tests)
CREATE_GRAPH = (
    "(there gy and self.saved() are tensors: a gradient built from minae's tensor ops is itself a graph, which "
    "reaches what its value depends on; NumPy's functions and methods leave the graph or fail)"
)

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
    under_create_graph(
        "sum", minae.tensor(rng(5).standard_normal((2, 4)), dtype=minae.float64), leaf((2, 3, 4), 6), dim=1
    )


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
    gy = minae.tensor(rng(7).standard_normal((1, 3, 1)), dtype=minae.float64)
    under_create_graph("mean", gy, leaf((2, 3, 4), 8), dim=(0, 2), keepdim=True)


def under_create_graph(op, gy, x, **options):
    # minae.grad(…, create_graph=True), double backprop: the spread-back gradient is itself a graph, built from gy
    call = ", ".join(f"{k}={v}" for k, v in options.items())
    assert_equal(
        helper("create_graph_report")(op, gy, x, **options),
        "∂/∂input 0 from gy",
        f"x.{op}({call}) of x {tuple(x.shape)} under create_graph=True (double backprop), {op.capitalize()}.backward's "
        "gradient: {actual}; expected {expected} " + CREATE_GRAPH,
    )

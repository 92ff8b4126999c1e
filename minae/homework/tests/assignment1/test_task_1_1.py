"""Task 1.1: the backward of Exp, Log and Mul, each op checked alone against finite differences.

Most of Mul's tests broadcast: an input stretched along an axis gets the sum of its copies' gradients. The
shapes are drawn from the run's seed. Where Mul's backward needs ``sum_to`` (task 1.2), the grader brings a
stand-in of its own, so that these tests do not need task 1.2 (in your copy, run by hand, they use yours).
"""

import minae
from minae.backend import np
from minae.homework.testing import assert_equal, helper, idea, leading_axes_sum_to, one_op_gradcheck, rng

IDEA = (  # what every test of this file checks: a failing test's line names it
    "backward is the chain rule: each input's gradient is the received gy = ∂L/∂y times the local derivative,"
    " for the inputs that want one"
)


CHAIN_RULE = idea("the chain rule: backward multiplies the gradient it receives (gy = ∂L/∂y) by the local derivative")
STRETCHED = idea(
    "an input that broadcasting stretched was used many times: its gradient is the sum of its copies' gradients, "
    "over every axis it was stretched along, in its own shape"
)
NUMBER = idea(
    "needs_grad says which inputs want a gradient: a Python number or a tensor that does not require grad gets None"
)

# why a gradient under create_graph must be built from tensor ops (the failure lines of the create_graph tests)
CREATE_GRAPH = (
    "(there gy and self.saved() are tensors: a gradient built from minae's tensor ops is itself a graph, which "
    "reaches what its value depends on; NumPy's functions and methods leave the graph or fail)"
)


def leaf(shape, seed, low=-1.5, high=1.5, requires_grad=True):
    values = rng(seed).uniform(low, high, shape)
    return minae.tensor(values, dtype=minae.float64, requires_grad=requires_grad)


def stretched_pair(seed, ndim):
    """Two shapes of ``ndim`` axes that broadcast, each with a size-1 axis stretched by the other: (3, 1), (1, 4)."""
    g = rng(seed)
    full = [int(n) for n in g.integers(2, 5, ndim)]
    while True:
        ones_a, ones_b = g.random(ndim) < 0.5, g.random(ndim) < 0.5
        if ones_a.any() and ones_b.any() and not (ones_a & ones_b).any():
            break
    a = tuple(1 if o else n for o, n in zip(ones_a, full))
    b = tuple(1 if o else n for o, n in zip(ones_b, full))
    return a, b


def any_axes_sum_to():
    """Inside: sum_to undoes any broadcasting, without task 1.2's code (the grader's stand-in)."""
    return helper("any_axes_sum_to")()


def needs_grad_respected(op, *inputs, what):
    report = helper("backward_report")(op, *inputs)
    assert_equal(
        report,
        "ok",
        f"{what}: Mul.backward {{actual}}; needs_grad says which inputs want a gradient: compute those, "
        "return None for the others (a Python number, a tensor that does not require grad)",
    )


def under_create_graph(op, what, gy, *inputs, expected, **options):
    report = helper("create_graph_report")(op, gy, *inputs, **options)
    assert_equal(
        report,
        expected,
        f"{what} under create_graph=True (double backprop), {op.capitalize()}.backward's gradients: {{actual}}; "
        "expected {expected} " + CREATE_GRAPH,
    )


BOTH = "∂/∂input 0 from gy, input 1; ∂/∂input 1 from gy, input 0"  # ∂(ab)/∂a = gy b, ∂(ab)/∂b = gy a


@CHAIN_RULE
def test_exp_backward():
    one_op_gradcheck(minae.exp, [leaf((3, 4), 0)], name="exp(x)")
    one_op_gradcheck(minae.exp, [leaf((), 1)], name="exp(x) of a 0-d x")
    gy = minae.tensor(rng(35).standard_normal((3, 4)), dtype=minae.float64)
    under_create_graph("exp", "exp(x)", gy, leaf((3, 4), 36), expected="∂/∂input 0 from gy, input 0")


@CHAIN_RULE
def test_log_backward():
    one_op_gradcheck(minae.log, [leaf((3, 4), 2, low=0.2, high=3.0)], name="log(x)")
    one_op_gradcheck(minae.log, [leaf((5,), 3, low=1e-2, high=0.1)], name="log(x) near 0")
    gy = minae.tensor(rng(37).standard_normal((3, 4)), dtype=minae.float64)
    under_create_graph("log", "log(x)", gy, leaf((3, 4), 38, low=0.2, high=3.0), expected="∂/∂input 0 from gy, input 0")


def test_mul_backward():
    one_op_gradcheck(minae.mul, [leaf((3, 4), 4), leaf((3, 4), 5)], name="a * b")
    a, c = leaf((3, 4), 6), leaf((3, 4), 7, requires_grad=False)
    needs_grad_respected("mul", a, c, what="a * c, c a tensor that does not require grad")
    one_op_gradcheck(lambda a: a * c, [a], name="a * constant")
    one_op_gradcheck(lambda a: c * a, [a], name="constant * a")
    one_op_gradcheck(lambda a: a * a, [a], name="a * a")  # both inputs are a: the two gradients add up


@NUMBER
def test_mul_by_a_python_number():
    # x * 2.0: the number is a constant of the graph, with no shape and no gradient
    g = rng(8)
    x, c = leaf(tuple(int(n) for n in g.integers(2, 5, 2)), 9), round(float(g.uniform(-3, 3)), 3)
    needs_grad_respected("mul", x, c, what=f"x * {c}")
    needs_grad_respected("mul", c, x, what=f"{c} * x")
    one_op_gradcheck(lambda x: x * c, [x], name=f"x * {c}")
    one_op_gradcheck(lambda x: c * x, [x], name=f"{c} * x")


@STRETCHED
def test_mul_broadcast_leading_axes():
    # b (4,) is broadcast over the rows of a (3, 4): its gradient is summed over the added leading axis
    g = rng(10)
    m, n, k = (int(s) for s in g.integers(2, 5, 3))
    with leading_axes_sum_to():
        one_op_gradcheck(minae.mul, [leaf((m, n), 11), leaf((n,), 12)], name=f"a ({m}, {n}) * b ({n},)")
        one_op_gradcheck(minae.mul, [leaf((n,), 13), leaf((k, m, n), 14)], name=f"a ({n},) * b ({k}, {m}, {n})")


@STRETCHED
def test_mul_broadcast_size_one_axes():
    # (3, 1) * (1, 4): each input is stretched along its size-1 axis, and kept as size 1 in its gradient
    a, b = stretched_pair(15, 2)
    with any_axes_sum_to():
        one_op_gradcheck(minae.mul, [leaf(a, 16), leaf(b, 17)], name=f"a {a} * b {b}")


@STRETCHED
def test_mul_broadcast_size_one_axes_3d():
    # (2, 1, 3) * (1, 4, 1): stretched in the middle and at the ends
    a, b = stretched_pair(18, 3)
    with any_axes_sum_to():
        one_op_gradcheck(minae.mul, [leaf(a, 19), leaf(b, 20)], name=f"a {a} * b {b}")
    gy = minae.tensor(rng(32).standard_normal(np.broadcast_shapes(a, b)), dtype=minae.float64)
    under_create_graph("mul", f"a {a} * b {b}", gy, leaf(a, 33), leaf(b, 34), expected=BOTH)


@STRETCHED
def test_mul_broadcast_leading_and_size_one_axes():
    # b (m, 1) into a (k, m, n): a new leading axis and a stretched size-1 axis at once
    g = rng(21)
    k, m, n = (int(s) for s in g.integers(2, 5, 3))
    with any_axes_sum_to():
        one_op_gradcheck(minae.mul, [leaf((k, m, n), 22), leaf((m, 1), 23)], name=f"a ({k}, {m}, {n}) * b ({m}, 1)")
        one_op_gradcheck(minae.mul, [leaf((1, n), 24), leaf((k, m, 1), 25)], name=f"a (1, {n}) * b ({k}, {m}, 1)")
    gy = minae.tensor(rng(39).standard_normal((k, m, n)), dtype=minae.float64)
    under_create_graph(
        "mul", f"a ({k}, {m}, {n}) * b ({m}, 1)", gy, leaf((k, m, n), 40), leaf((m, 1), 41), expected=BOTH
    )


@STRETCHED
def test_mul_broadcast_a_single_value():
    # a (1, 1) tensor times a matrix: its one value is used everywhere, its gradient is the sum of all
    g = rng(26)
    m, n = (int(s) for s in g.integers(2, 5, 2))
    with any_axes_sum_to():
        one_op_gradcheck(minae.mul, [leaf((m, n), 27), leaf((1, 1), 28)], name=f"a ({m}, {n}) * s (1, 1)")
        one_op_gradcheck(minae.mul, [leaf((), 29), leaf((m, n), 30)], name=f"s () * a ({m}, {n})")

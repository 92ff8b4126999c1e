"""Task 2.1: the fused Linear op's backward (y = x Wᵀ + b), alone and inside nn.Linear, against finite differences."""

import minae
import minae.nn.functional as F
from minae import nn
from minae.backend import np
from minae.homework.testing import assert_close, assert_equal, gradcheck, gradgradcheck, named, rng

IDEA = (  # what every test of this file checks: a failing test's line names it
    "the Linear op's backward by the chain rule on y_nj = Σ_i x_ni W_ji + b_j: ∂L/∂x, ∂L/∂W, ∂L/∂b as matrix "
    "products of x's, W's and b's shapes, where needs_grad asks"
)


def leaf(shape, seed, requires_grad=True):
    values = rng(seed).standard_normal(shape)
    return minae.tensor(values, dtype=minae.float64, requires_grad=requires_grad)


def test_linear_backward():
    gradcheck(named(F.linear, "linear(x, W, b)"), [leaf((5, 3), 0), leaf((4, 3), 1), leaf((4,), 2)])


def test_linear_backward_without_bias():
    gradcheck(named(F.linear, "linear(x, W)"), [leaf((5, 3), 3), leaf((4, 3), 4)])


def test_linear_backward_only_what_is_needed():
    # the data batch x does not require grad: only W and b get gradients
    x = leaf((6, 3), 5, requires_grad=False)
    gradcheck(named(lambda w, b: F.linear(x, w, b), "linear(data, W, b)"), [leaf((2, 3), 6), leaf((2,), 7)])
    # and the backward itself computes only those: None for x (the data) and for a bias that is not there
    for bias in (leaf((2,), 7), None):
        f = F.linear(x, leaf((2, 3), 6), bias).grad_fn
        grads = f.backward(np.ones((6, 2)), f.needs_grad)
        wasted = [name for name, need, g in zip(("x", "W", "b"), f.needs_grad, grads) if not need and g is not None]
        message = (
            "LinearOp.backward returned a gradient for {actual}, which needs none; needs_grad says which inputs "
            "want a gradient: compute those, return None for the others"
        )
        assert_equal(", ".join(wasted) or "none", "none", message)


def test_linear_double_backward():
    gradgradcheck(named(F.linear, "linear(x, W, b)"), [leaf((4, 3), 8), leaf((2, 3), 9), leaf((2,), 10)])


# BEGIN GRADER ONLY
def test_nn_linear_gradients():
    layer = nn.Linear(3, 4)
    x = minae.tensor(rng(11).standard_normal((5, 3)).astype(np.float32), requires_grad=True)  # the layer's dtype
    g = rng(12).standard_normal((5, 4)).astype(np.float32)
    y = layer(x)
    y.backward(minae.tensor(g))
    w = layer.weight.numpy().astype(np.float64)
    assert_close(layer.weight.grad, g.T @ x.numpy(), "nn.Linear: weight.grad", rtol=1e-4, atol=1e-5)
    assert_close(layer.bias.grad, g.sum(axis=0), "nn.Linear: bias.grad", rtol=1e-4, atol=1e-5)
    assert_close(x.grad, g @ w, "nn.Linear: x.grad", rtol=1e-4, atol=1e-5)


# END GRADER ONLY

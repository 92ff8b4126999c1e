"""Task 2.4: the contractive penalty ‖∂h/∂y‖²_F of h = f(W y + b) in closed form, per sample.

The expected values come from the Jacobian by its definition: each column ∂h/∂y_i by central differences of
the encoder, computed here in NumPy. Your closed form must agree with it.
"""

import minae
import minae.nn.functional as F
from minae.backend import np
from minae.homework.testing import assert_close, gradcheck, named, rng

IDEA = (  # what every test of this file checks: a failing test's line names it
    "the contractive penalty is the squared Frobenius norm of the encoder's Jacobian ∂h/∂y, trained through h"
)


def encoder(seed, n=4, d_y=5, d_h=3):
    gen = rng(seed)
    return gen.standard_normal((n, d_y)), gen.standard_normal((d_h, d_y)), gen.standard_normal(d_h)


def code(y, w, b, activation):
    a = y @ w.T + b
    return 1 / (1 + np.exp(-a)) if activation == "sigmoid" else np.tanh(a)


def jacobian_norms(y, w, b, activation, eps=1e-5):
    """‖J‖²_F per sample, J[:, i] = (h(y + ε e_i) − h(y − ε e_i)) / 2ε: the Jacobian by its definition."""
    total = np.zeros(len(y))
    for i in range(y.shape[1]):
        step = np.zeros(y.shape[1])
        step[i] = eps
        column = (code(y + step, w, b, activation) - code(y - step, w, b, activation)) / (2 * eps)
        total += (column**2).sum(axis=1)
    return total


def t(values, requires_grad=False):
    return minae.tensor(values, dtype=minae.float64, requires_grad=requires_grad)


def test_contractive_penalty_sigmoid():
    y, w, b = encoder(0)
    got = F.contractive_penalty(t(code(y, w, b, "sigmoid")), t(w), "sigmoid", reduction="none")
    assert_close(got, jacobian_norms(y, w, b, "sigmoid"), "‖∂h/∂y‖²_F per sample, sigmoid encoder", rtol=1e-6)


def test_contractive_penalty_tanh_and_reductions():
    y, w, b = encoder(1)
    h, expected = t(code(y, w, b, "tanh")), jacobian_norms(y, w, b, "tanh")
    assert_close(F.contractive_penalty(h, t(w), "tanh", reduction="none"), expected, "‖∂h/∂y‖²_F, tanh", rtol=1e-6)
    assert_close(F.contractive_penalty(h, t(w), "tanh"), expected.mean(), "‖∂h/∂y‖²_F, batch mean", rtol=1e-6)
    assert_close(F.contractive_penalty(h, t(w), "tanh", reduction="sum"), expected.sum(), "‖∂h/∂y‖²_F, sum", rtol=1e-6)


def test_contractive_penalty_backward():
    y, w, b = encoder(2)
    h = t(code(y, w, b, "sigmoid"), True)
    penalty = named(lambda h, w: F.contractive_penalty(h, w, "sigmoid", reduction="none"), "contractive_penalty(h, W)")
    gradcheck(penalty, [h, t(w, True)])


def test_contractive_penalty_through_the_encoder():
    # as a CAE trains it: W enters directly and through h = σ(W y + b)
    y, w, b = encoder(3)
    ys = t(y)

    def penalty(w, b):
        return F.contractive_penalty(minae.sigmoid(ys @ w.T + b), w, "sigmoid", reduction="none")

    gradcheck(named(penalty, "contractive_penalty(σ(W y + b), W)"), [t(w, True), t(b, True)])
